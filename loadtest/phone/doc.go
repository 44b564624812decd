// Package phone is a small SIP + RTP user agent for tests and load
// generation: it places calls (Dial, DialAsync), answers them (Config.OnInvite),
// sends G.711 audio, tones and RFC 4733 / SIP INFO DTMF, and measures what it
// receives (packets, loss, level, tones, digits).
//
// Signalling uses sipgo directly. The protocol code of the media path is the
// server's own, not a second copy: G.711 (media.Codec), RFC 4733 send and
// receive (media.DTMFSender, media.DTMFReceiver, pinned to the RFC's bytes by
// media's tests) and pacing (media.Scheduler), with RTP headers by pion/rtp.
//
// A Phone is one SIP user agent listening on one address; each Call owns one
// UDP socket for RTP with a reader goroutine, and a place on the phone's
// scheduler that sends its 20 ms frames on drift-free deadlines. Everything a
// call starts stops when the call ends; Phone.Close ends all calls and waits
// for their goroutines.
package phone
