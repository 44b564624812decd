package call

// inbandStream is a stream that can read keypad tones in the received audio
// (media.Session.SetInbandDTMF); the digits arrive on its Digits channel with
// the RFC 4733 ones, so the loop's digit path is the same for all three
// sources (RFC 4733, SIP INFO, in-band).
type inbandStream interface {
	SetInbandDTMF(on bool)
}

// inbandDTMF turns in-band detection on for a call from a trunk that opted in
// (Config.InbandDTMF). Calls from other trunks never pay for it. A peer that
// also sends RFC 4733 is read by RFC 4733 only (the session stops reading tones
// at its first event), so no digit counts twice.
func (c *Call) inbandDTMF() {
	if !c.m.cfg.InbandDTMF[c.rec.Trunk] {
		return
	}
	if s, ok := c.s.(inbandStream); ok {
		s.SetInbandDTMF(true)
		c.log.Debug("in-band DTMF detection on", "trunk", c.rec.Trunk)
	}
}
