// Package loadtest measures what one hotline node carries. Every run is bounded in calls
// and time and stops by itself.
//
//   - RunDay (day.go): a simulated call-center day, citizens and agents together through the
//     IVR and the ACD, with abandons, ratings, declined and unanswered rings and blind
//     transfers, and the ground truth that Compare holds against the server's records and
//     report.
//   - RunBridge (bridge.go): end-to-end bridged capacity: N citizens through the menu to N
//     agents, all pairs held together, each side's tone checked at the other on every pair.
//   - RunSurvey (survey.go): the citizens at the far end of an outbound trunk for the
//     server's survey campaigns (云回访): busy, declined, no such number, no answer, keypad
//     answers, checked against the campaign's counts and records.
//   - RunIVR (ivr.go): N concurrent citizens in the IVR, RTP loss, jitter and setup times,
//     with the server's send lateness, CPU and memory from its /metrics.
//   - RunSetup (setup.go): call setups per second with SIPp (testdata/sipp/load_setup.xml),
//     ramped until failures pass a threshold.
//
// The Go test phone (package phone) does the signalling. Media of the ivr and bridge runs
// is carried by a Meter rather than by a socket per call: a few shared UDP sockets named in
// every call's SDP (phone.Config.MediaAddr), and per two sockets one pacing goroutine, the
// server's own pacing wheel (media.Scheduler), which sends every stream's 20 ms frame on
// drift-free deadlines, all of a 1 ms slot in one sendmmsg per socket, and then takes what
// arrived with recvmmsg without waiting, each datagram stamped by the kernel on arrival
// (SO_TIMESTAMPNS) so that the tester's reading delay does not show as jitter (the server
// relays the tester's own send lateness, which the reports show beside it). A thousand
// wake-ups a second per pacer at any load: the tester stays cheaper than the server it
// measures on the same machine. The day run keeps the phone's own media per call (it
// listens for prompts).
//
// Targets, APIs and local addresses must be loopback (127.0.0.0/8 or ::1) unless the run
// allows a remote target explicitly (DayConfig.AllowRemote, BridgeConfig.AllowRemote: the
// command line allows it when --local-ip is not loopback); the command line also refuses a
// rate or a call count above --max-rate and --max-calls, so that a typo cannot flood a
// production SBC.
package loadtest
