package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// A real softphone as the supervisor (the "done means"): baresip, registered as
// 1010 and playing 1500 Hz, dials *251001 while agent 1001 talks with a citizen and listens
// (nobody hears it), presses 6 and whispers (the agent hears it, the citizen does not),
// then presses 7 and joins (the citizen hears it too).
func TestBaresipSupervisorListenWhisperBarge(t *testing.T) {
	t.Parallel()
	needBaresip(t)
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	playTone(citizen, toneCitizen)
	playTone(agentCall, toneAgent)

	dir := t.TempDir()
	consPort := freeUDPPort(t)
	writeToneWAV(t, filepath.Join(dir, "tone.wav"), toneSupervisor, 30*time.Second)
	config := fmt.Sprintf(`module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module menu.so
module cons.so
module account.so
sip_listen 127.0.0.1:%d
cons_listen 127.0.0.1:%d
audio_player aufile,%s
audio_source aufile,%s
`, freeUDPPort(t), consPort, filepath.Join(dir, "play.wav"), filepath.Join(dir, "tone.wav"))
	accounts := fmt.Sprintf("<sip:1010@%s>;auth_pass=agent1010;regint=60;audio_codecs=PCMA,PCMU\n", s.sipAddr())
	runBaresip(t, context.Background(), s, dir, config, accounts, "1010")
	// The softphone's user dials *251001 and presses keys (baresip's UDP console takes them).
	cons, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", consPort))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	press := func(cmd string) {
		t.Helper()
		if _, err := cons.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
	}
	press("/dial sip:*251001@" + s.sipAddr() + "\n")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(httpGet(t, "http://"+s.httpAddr()+"/api/v1/events?event=MONITOR", 200), `"listen"`) {
		if time.Now().After(deadline) {
			t.Fatal("baresip's *251001 did not join the call")
		}
		time.Sleep(50 * time.Millisecond)
	}
	neverHears(t, agentCall, toneSupervisor, time.Second, "agent (baresip listening)")
	neverHears(t, citizen, toneSupervisor, 200*time.Millisecond, "citizen (baresip listening)")

	press("6\x04") // the key, then its release (baresip's KEYCODE_REL)
	waitTone(t, agentCall, toneSupervisor, "agent (baresip whispering)")
	neverHears(t, citizen, toneSupervisor, time.Second, "citizen (baresip whispering)")

	press("7\x04")
	waitTone(t, citizen, toneSupervisor, "citizen (baresip barging in)")
	waitTone(t, agentCall, toneSupervisor, "agent (baresip barging in)")
}
