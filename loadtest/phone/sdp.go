package phone

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// G.711 static payload types (RFC 3551).
const (
	PCMU uint8 = 0
	PCMA uint8 = 8
)

// mediaOffer is what one side of an offer/answer said about its audio stream.
type mediaOffer struct {
	addr   netip.AddrPort // where it wants RTP
	codecs []uint8        // G.711 payload types, in the order given
	dtmfPT uint8          // telephone-event/8000 payload type, valid if hasDTMF
	dtmf   bool
	dir    string // sendrecv, sendonly, recvonly or inactive (media level wins over session level)
}

func codecName(pt uint8) string {
	switch pt {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return strconv.Itoa(int(pt))
}

// buildSDP returns an SDP body offering or answering one audio stream.
// dir is its direction attribute ("" = sendrecv).
func buildSDP(ip netip.Addr, port uint16, sessID uint64, codecs []uint8, dtmf bool, dtmfPT uint8, dir string) ([]byte, error) {
	if dir == "" {
		dir = "sendrecv"
	}
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(port)},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, pt := range codecs {
		md.WithCodec(pt, codecName(pt), 8000, 0, "")
	}
	if dtmf {
		md.WithCodec(dtmfPT, "telephone-event", 8000, 0, "0-16")
	}
	md.WithValueAttribute("ptime", "20")
	md.WithPropertyAttribute(dir)
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       "-",
			SessionID:      sessID,
			SessionVersion: sessID,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ip.String(),
		},
		SessionName: "hotline-phone",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: ip.String()},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	return s.Marshal()
}

// parseSDP extracts the first active audio stream of an SDP body.
func parseSDP(body []byte) (mediaOffer, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return mediaOffer{}, fmt.Errorf("%w: %v", ErrSDP, err)
	}
	for _, md := range s.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = s.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return mediaOffer{}, fmt.Errorf("%w: no connection address", ErrSDP)
		}
		host, _, _ := strings.Cut(ci.Address.Address, "/")
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return mediaOffer{}, fmt.Errorf("%w: connection address %q", ErrSDP, ci.Address.Address)
		}
		port := md.MediaName.Port.Value
		if port < 1 || port > 65535 {
			return mediaOffer{}, fmt.Errorf("%w: port %d", ErrSDP, port)
		}
		o := mediaOffer{addr: netip.AddrPortFrom(ip, uint16(port)), dir: "sendrecv"}
		for _, attrs := range [][]sdp.Attribute{s.Attributes, md.Attributes} {
			for _, a := range attrs {
				switch a.Key {
				case "sendrecv", "sendonly", "recvonly", "inactive":
					o.dir = a.Key
				}
			}
		}
		rtpmap := map[uint8]string{}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			ptStr, enc, ok := strings.Cut(a.Value, " ")
			pt, err := strconv.ParseUint(ptStr, 10, 7)
			if !ok || err != nil {
				continue
			}
			rtpmap[uint8(pt)] = strings.ToLower(strings.TrimSpace(enc))
		}
		for _, f := range md.MediaName.Formats {
			v, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			pt := uint8(v)
			enc, mapped := rtpmap[pt]
			switch {
			case (pt == PCMU || pt == PCMA) && (!mapped || strings.HasPrefix(enc, strings.ToLower(codecName(pt))+"/8000")):
				o.codecs = append(o.codecs, pt)
			case mapped && strings.HasPrefix(enc, "telephone-event/8000") && !o.dtmf:
				o.dtmf, o.dtmfPT = true, pt
			}
		}
		return o, nil
	}
	return mediaOffer{}, fmt.Errorf("%w: no audio stream", ErrSDP)
}
