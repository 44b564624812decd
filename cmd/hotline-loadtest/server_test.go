package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

// hotlinedBin is built once by the first test that needs it and removed after the last
// (TestMain).
var hotlinedBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// startServer starts a real hotlined (built once per test binary) with the default
// configuration, wrap-up 1 s and no position announcements, changed further by replace
// (old, new pairs; each old must occur), on the given RTP ports. It stops with the test.
// buildTimeout bounds the one build of hotlined: a cold build cache on a busy two-core
// machine (the whole suite compiling with -race beside it) has taken over two minutes.
const buildTimeout = 6 * time.Minute

// hotlinedBinary returns the hotlined binary, built once per test binary (removed by TestMain).
func hotlinedBinary(t *testing.T) string {
	t.Helper()
	hotlinedBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "hotline-loadtest-test")
		if err != nil {
			hotlinedBin.err = err
			return
		}
		hotlinedBin.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		hotlinedBin.path, hotlinedBin.err = loadtest.BuildHotlined(ctx, dir)
	})
	if hotlinedBin.err != nil {
		t.Fatal(hotlinedBin.err)
	}
	return hotlinedBin.path
}

// startServer starts a real hotlined (built once per test binary) with the default
// configuration, wrap-up 1 s and no position announcements, changed further by replace
// (old, new pairs; each old must occur), on the given RTP ports. It stops with the test.
func startServer(t *testing.T, rtpPorts string, replace ...string) *loadtest.Hotlined {
	t.Helper()
	bin := hotlinedBinary(t)
	conf, err := os.ReadFile(filepath.Join("..", "..", "configs", "hotline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	replace = append([]string{"    wrap_up: 10s ", "    wrap_up: 1s ", "announce_frequency: 60s", "announce_frequency: 0s"}, replace...)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("test config: %q not found in configs/hotline.yaml", replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	h, err := loadtest.StartHotlined(bin, s, t.TempDir(), rtpPorts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// removeHotlined removes the binary hotlinedBinary built, if any.
func removeHotlined() {
	if hotlinedBin.dir != "" {
		os.RemoveAll(hotlinedBin.dir)
	}
}

// cleanupM runs the tests, then removes what they left for each other.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	defer removeHotlined()
	return c.m.Run()
}
