//go:build !linux

package loadtest

import (
	"net"
	"time"
)

// Elsewhere than Linux arrivals are stamped when read.
var stampOOBLen = 0

func stampArrivals(*net.UDPConn) {}

func arrivalStamp([]byte) (time.Time, bool) { return time.Time{}, false }

func recvBuffer(*net.UDPConn) int { return 0 }
