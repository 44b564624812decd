// Package ivr is the IVR decision logic of hotline: the menu graph read from
// configuration, the per-call menu state machine ([Runner]), and the routing of
// a called number to its entry by business hours and a holiday calendar
// ([Route]).
//
// The package is pure logic on the ground floor of the module: it opens no
// sockets, knows nothing of SIP or RTP and imports no other hotline package.
// It declares the small interfaces it needs from the outside world — [Media]
// (play prompts, stop them, yield DTMF digits), [Queue] (hand the call to the
// ACD) and [Clock] (time) — and the call package implements them.
//
// # Menu semantics
//
// The runner follows the IVR semantics of Asterisk's Background()/WaitExten()
// and FreeSWITCH's ivr module:
//
//   - A menu's prompts play in order. Any digit during a prompt stops it
//     (barge-in) and counts as input. After the prompts end the runner waits
//     [Menu.Timeout] for the first digit.
//   - A digit listed in [Menu.Options] runs its action. Any other digit is a
//     failure ("invalid"): [Menu.InvalidPrompt] plays and the menu is replayed.
//     No digit within the timeout is a failure too ("timeout"):
//     [Menu.TimeoutPrompt] plays and the menu is replayed. The failure prompt is
//     played on every failure, including the last one; when the failures of
//     this menu visit reach [Menu.MaxRetries], [Menu.Fallback] runs instead of a
//     replay.
//   - An input menu ([Menu.Input] set) collects a multi-digit entry: digits
//     accumulate until the terminator, MaxDigits, or InterDigitTimeout after
//     the last digit. Fewer than MinDigits digits (a terminator alone included)
//     is an invalid entry. A valid entry is stored in [Result.Vars] under
//     Input.Store and Input.Next runs.
//   - "menu X" enters X and pushes the current menu on a back stack; "back"
//     pops it (at the entry menu, "back" replays the menu like "repeat").
//     Entering a menu already on the stack truncates the stack to below it, so
//     the stack never grows beyond the number of menus. Entering a menu (by
//     "menu", "back" or a fallback) starts a fresh visit with zero failures;
//     "repeat" replays the menu and keeps the failure count.
//   - Digits are never lost between states. Digits the runner has not read
//     stay in the Media's digit channel and are read by the next state that
//     takes input (type-ahead into the next menu works). A digit pressed during
//     the invalid/timeout prompt stops that prompt and is kept: it is the input
//     of the next attempt, and the menu's prompts are not replayed (as with
//     Asterisk's Background(), whose DTMF buffer survives). If that failure was
//     the last one, the kept digit is the first input of the fallback's menu, or
//     dropped when the fallback ends the IVR.
//   - Loops are bounded: after [MaxTransitionsWithoutInput] menu visits
//     (menu, back, repeat, fallback) without a caller digit in between, the
//     runner logs an error, records a "fallback" step with Input "loop" and
//     ends with "hangup".
//
// # State machine
//
// A Run is driven by one looplab/fsm machine (routing, prompting, waiting,
// collecting, failing, queued, playing, done): its current state picks the
// handler that runs next, and the event that handler sends (a digit, a
// timeout, the prompts' end, a choice) picks the state after it. The machine
// has no callbacks; only the Run goroutine touches it.
//
// # Time
//
// Nothing in the package reads the wall clock directly: the runner takes a
// [Clock] and [Route.Entry] takes the current time, so tests are exact.
package ivr
