package main

import (
	"context"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// The after-call rule: an inbound call that an agent of consult answered schedules a
// satisfaction survey of the caller (campaign "after-call"); the survey dials the caller's
// number through the outbound trunk, where SIPp answers and presses 1.
func TestAfterCallSurvey(t *testing.T) {
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw,
		`    from: "09:00"`+"\n"+`    to: "20:00"`, `    from: "00:00"`+"\n"+`    to: "24:00"`,
		"  # after_call:", "  after_call:",
		"  #   queues: [consult, complaint, business]", "    queues: [consult]",
		"  #   delay: 30m", "    delay: 1s",
		"  #   script: satisfaction", "    script: satisfaction",
		"  #   trunk: loopback-out", "    trunk: loopback-out",
	))
	far := startSIPpUAS(t, gw, "uas_survey_rate1.xml", 1, "-d", "1500")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, _ := connected(t, s, ag)
	waitLiveStage(t, s, "talking")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	in := waitDirectionRecords(t, s, "inbound", 1)[0]
	if in.Disposition != "answered" || in.Caller != "13700137000" {
		t.Fatalf("inbound record %+v", in)
	}
	tg := waitTargetState(t, s, "after-call", in.ID, 30*time.Second, func(v targetView) bool { return v.State == "done" })
	if tg.Outcome != "answered" || tg.Satisfaction != "satisfied" || tg.Phone != "13700137000" || tg.Attempts != 1 {
		t.Errorf("after-call target %+v", tg)
	}
	sv := waitDirectionRecords(t, s, "survey", 1)[0]
	if sv.Called != "13700137000" || sv.Campaign != "after-call" || sv.Target != in.ID || sv.Satisfaction != "satisfied" {
		t.Errorf("survey record %+v", sv)
	}
	if !sv.Start.After(in.End.Add(time.Second - 50*time.Millisecond)) {
		t.Errorf("survey at %v, the call ended %v: want the rule's 1 s delay", sv.Start, in.End)
	}
	if ok, out := far.wait(t, 20*time.Second); !ok {
		t.Errorf("SIPp did not complete the survey:\n%s", out)
	}
}
