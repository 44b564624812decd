// Package loadtest measures what one hotline node carries, on loopback only.
//
// Three runs exist, each bounded in calls and time and stopping by itself (RunDay is
// described in day.go: simulated citizens and agents together through the IVR and the ACD,
// with the ground truth that Compare holds against the server's records and report):
//
//   - RunIVR places N concurrent citizen calls to the IVR at a given rate with
//     the Go test phone (package phone) for signalling, holds them all together
//     for a while, optionally presses digits, and measures what each citizen
//     hears: RTP packets, loss from sequence gaps and RFC 3550 interarrival
//     jitter, plus call-setup times. It scrapes the server's /metrics before,
//     at and after full load for its own view: send lateness, CPU and memory.
//   - RunSetup drives SIPp (testdata/sipp/load_setup.xml) at one or more call
//     rates (INVITE → 200 → ACK → BYE) until failures pass a threshold, and
//     reports achieved rate, failures and INVITE→200 percentiles.
//
// Media is measured by a Meter rather than by the phone's own per-call RTP
// sockets: a few shared UDP sockets, one reader each, and one pacing goroutine
// (a media.Scheduler, the server's own pacing wheel) that sends every call's
// caller audio (G.711 silence, RFC 4733 digits by media.DTMFSender) on
// drift-free 20 ms deadlines. The server does symmetric RTP (it latches to the
// source of the caller's first packet, as it must behind NAT), so it sends each
// call's audio to the meter. This keeps the load tester's own cost per call
// small on the same machine as the server: no socket and no reader goroutine
// per call.
//
// Every address involved must be a loopback address (127.0.0.0/8 or ::1):
// the load tester refuses any other target.
package loadtest
