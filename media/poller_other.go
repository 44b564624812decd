//go:build !linux

package media

import (
	"errors"
	"net/netip"
)

// poller is Linux's (poller_linux.go); elsewhere newOSPoller always chooses
// the portable mode and the types below are never used.
type poller struct{}

func newOSPoller(int) *poller { return nil }

var errNoPoller = errors.New("media: no poller on this system")

func (*poller) open(netip.AddrPort) (*rawSocket, error) { return nil, errNoPoller }

type rawSocket struct {
	local netip.AddrPort
	h     pollHandler
}

func (*rawSocket) start()                              {}
func (*rawSocket) requestClose()                       {}
func (*rawSocket) sendTo([]byte, netip.AddrPort) error { return errNoPoller }
