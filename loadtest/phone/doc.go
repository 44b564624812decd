// Package phone is a small SIP + RTP user agent for tests and load
// generation: it places calls (Dial, DialAsync), answers them (Config.OnInvite),
// sends G.711 audio, tones and RFC 4733 / SIP INFO DTMF, and measures what it
// receives (packets, loss, level, tones, digits).
//
// It is deliberately independent of hotline's media package so that it can
// serve as a test oracle for it: RTP, G.711 and RFC 4733 are implemented here
// again on top of pion/rtp and zaf/g711, and signalling uses sipgo directly.
//
// A Phone is one SIP user agent listening on one address; each Call owns one
// UDP socket for RTP with a reader goroutine and a paced sender goroutine
// (20 ms frames on drift-free deadlines). Everything a call starts stops when
// the call ends; Phone.Close ends all calls and waits for their goroutines.
package phone
