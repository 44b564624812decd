package sip

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
)

// Payload types of the two G.711 laws (RFC 3551 static assignments).
const (
	PayloadPCMU uint8 = 0
	PayloadPCMA uint8 = 8
)

// DefaultDTMFPayloadType is what we offer for telephone-event when we make the offer.
const DefaultDTMFPayloadType uint8 = 101

// Direction is the SDP media direction of the remote party (RFC 3264 §5.1).
type Direction string

// Directions as written in SDP.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Media is the outcome of an offer/answer exchange for the one audio stream of a leg.
type Media struct {
	Addr        netip.AddrPort // where the remote party wants RTP
	PayloadType uint8          // chosen codec: PayloadPCMU or PayloadPCMA
	// RTPType is the payload type on the wire when the offer carried the codec under a
	// dynamic number (a=rtpmap:97 PCMU/8000); 0 means PayloadType itself. See WireType.
	RTPType   uint8
	DTMFType  uint8     // telephone-event payload type the remote used; 0 = none
	Direction Direction // the remote's direction; sendonly/inactive means "on hold"
	SRTP      *SRTP     // SDES keys when the media is SRTP; nil = plain RTP
}

// WireType is the payload type RTP packets of the chosen codec carry.
func (m Media) WireType() uint8 {
	if m.RTPType != 0 {
		return m.RTPType
	}
	return m.PayloadType
}

// Receives reports whether the remote wants our media (its direction is sendrecv or
// recvonly): a sendonly or inactive remote gets no RTP from us.
func (m Media) Receives() bool { return m.Direction != SendOnly && m.Direction != Inactive }

// OnHold reports whether the remote party put us on hold.
func (m Media) OnHold() bool {
	return m.Direction == SendOnly || m.Direction == Inactive || !m.Addr.Addr().IsValid() || m.Addr.Addr().IsUnspecified()
}

// codecName maps the codec names a trunk config may use to payload types.
func codecPayload(name string) (uint8, bool) {
	switch strings.ToUpper(name) {
	case "PCMA", "G711A", "G.711A":
		return PayloadPCMA, true
	case "PCMU", "G711U", "G.711U":
		return PayloadPCMU, true
	}
	return 0, false
}

// PayloadName is the rtpmap encoding name of a G.711 payload type.
func PayloadName(pt uint8) string {
	if pt == PayloadPCMA {
		return "PCMA"
	}
	return "PCMU"
}

// offer is what we read from a remote SDP offer (or answer).
type offer struct {
	addr      netip.AddrPort
	codecs    []uint8 // G.711 payload types offered, in the offer's order
	dtmfType  uint8
	direction Direction
	mlines    []mline         // every m= line of the offer, in order
	audio     int             // index of the audio stream we take in mlines
	dynamic   map[uint8]uint8 // codec → the dynamic payload type the offer gave it, if no static one
	proto     string          // the audio stream's transport: RTP/AVP, RTP/AVPF, RTP/SAVP or RTP/SAVPF
	cryptos   []cryptoAttr    // its usable a=crypto lines, in order
}

// mline is an m= line of an offer; the answer repeats each, rejecting all but our audio
// stream with port 0 (RFC 3264 §6).
type mline struct {
	media  string
	protos []string
	format string
}

// parseSDP reads the first audio stream of an SDP body. It returns ErrBadSDP for SDP that
// cannot be parsed or makes no sense, and ErrNoAudio when there is no usable audio stream.
func parseSDP(body []byte) (offer, error) {
	var o offer
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return o, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var audio *sdp.MediaDescription
	for i, md := range sd.MediaDescriptions {
		f := "0"
		if len(md.MediaName.Formats) > 0 {
			f = md.MediaName.Formats[0]
		}
		o.mlines = append(o.mlines, mline{media: md.MediaName.Media, protos: md.MediaName.Protos, format: f})
		if audio == nil && md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			audio, o.audio = md, i
		}
	}
	if audio == nil {
		return o, ErrNoAudio
	}
	proto := strings.Join(audio.MediaName.Protos, "/")
	if proto != "RTP/AVP" && proto != "RTP/AVPF" && !secureProto(proto) {
		return o, fmt.Errorf("%w: transport %q", ErrNoAudio, proto)
	}
	o.proto = proto
	for _, a := range audio.Attributes {
		if a.Key != "crypto" || len(o.cryptos) >= maxCryptos {
			continue
		}
		if c, err := parseCrypto(a.Value); err == nil {
			o.cryptos = append(o.cryptos, c)
		}
	}
	port := audio.MediaName.Port.Value
	if port < 1 || port > 65535 {
		return o, fmt.Errorf("%w: port %d", ErrBadSDP, port)
	}
	conn := audio.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return o, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	if conn.NetworkType != "IN" || (conn.AddressType != "IP4" && conn.AddressType != "IP6") {
		return o, fmt.Errorf("%w: connection %s %s", ErrBadSDP, conn.NetworkType, conn.AddressType)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return o, fmt.Errorf("%w: connection address %q", ErrBadSDP, conn.Address.Address)
	}
	o.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))

	for _, f := range audio.MediaName.Formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			return o, fmt.Errorf("%w: payload type %q", ErrBadSDP, f)
		}
		pt := uint8(n)
		name, rate := rtpmap(audio, pt)
		switch {
		case pt == PayloadPCMU && (name == "" || name == "PCMU" && rate == 8000):
			o.addCodec(PayloadPCMU, pt)
		case pt == PayloadPCMA && (name == "" || name == "PCMA" && rate == 8000):
			o.addCodec(PayloadPCMA, pt)
		case pt >= 96 && name == "PCMU" && rate == 8000:
			o.addCodec(PayloadPCMU, pt)
		case pt >= 96 && name == "PCMA" && rate == 8000:
			o.addCodec(PayloadPCMA, pt)
		case name == "TELEPHONE-EVENT" && rate == 8000 && o.dtmfType == 0:
			o.dtmfType = pt
		}
	}
	o.direction = SendRecv
	for _, attrs := range [][]sdp.Attribute{sd.Attributes, audio.Attributes} {
		for _, a := range attrs {
			switch Direction(a.Key) {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				o.direction = Direction(a.Key)
			}
		}
	}
	return o, nil
}

// maxCryptos bounds the a=crypto lines kept from one offer.
const maxCryptos = 8

// addCodec notes that the offer carries codec under payload type pt; a static type wins
// over a dynamic one for the same codec.
func (o *offer) addCodec(codec, pt uint8) {
	if i := slices.Index(o.codecs, codec); i < 0 {
		o.codecs = append(o.codecs, codec)
	} else if pt >= 96 {
		return // the codec is there already
	}
	if pt >= 96 {
		if o.dynamic == nil {
			o.dynamic = map[uint8]uint8{}
		}
		o.dynamic[codec] = pt
	} else {
		delete(o.dynamic, codec)
	}
}

// rtpmap returns the upper-cased encoding name and clock rate of pt, or "" when the offer
// has no rtpmap line for it (allowed for static payload types).
func rtpmap(md *sdp.MediaDescription, pt uint8) (string, int) {
	prefix := strconv.Itoa(int(pt)) + " "
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" || !strings.HasPrefix(a.Value, prefix) {
			continue
		}
		enc := strings.TrimSpace(a.Value[len(prefix):])
		name, rest, _ := strings.Cut(enc, "/")
		rateStr, _, _ := strings.Cut(rest, "/")
		rate, _ := strconv.Atoi(rateStr)
		return strings.ToUpper(name), rate
	}
	return "", 0
}

// negotiate picks the first codec of our preference the offer contains.
func negotiate(o offer, prefs []uint8) (Media, error) {
	for _, want := range prefs {
		for _, got := range o.codecs {
			if got == want {
				return Media{Addr: o.addr, PayloadType: want, RTPType: o.dynamic[want], DTMFType: o.dtmfType, Direction: o.direction}, nil
			}
		}
	}
	return Media{}, ErrNoCommonCodec
}

var sdpSession atomic.Uint64

func init() { sdpSession.Store(uint64(time.Now().Unix())) }

// localSDP describes our side of a leg. The version grows with every new SDP of the session.
type localSDP struct {
	id      uint64
	version uint64
	addr    netip.AddrPort

	keys    *SRTP        // our answer's keying (answer with an offer); nil = plain
	offered []cryptoAttr // our offer's a=crypto lines (answer without an offer)
	secure  bool         // our offer is RTP/SAVP (SRTP required)
}

func newLocalSDP(addr netip.AddrPort) *localSDP {
	return &localSDP{id: sdpSession.Add(1), version: 1, addr: addr}
}

// answerDirection is our direction in reply to the remote's (RFC 3264 §6.1).
func answerDirection(remote Direction) Direction {
	switch remote {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// marshal builds an SDP body offering payload types pts (with telephone-event dtmf when
// non-zero) in direction dir.
func (l *localSDP) marshal(pts []uint8, dtmf uint8, dir Direction) []byte {
	return l.answer(nil, pts, dtmf, dir)
}

// answer builds our SDP; when o is an offer, the answer has one m= line for each of the
// offer's, in order: our audio stream where the offer's is, the others rejected (port 0).
func (l *localSDP) answer(o *offer, pts []uint8, dtmf uint8, dir Direction) []byte {
	ipType := "IP4"
	if l.addr.Addr().Is6() {
		ipType = "IP6"
	}
	formats := make([]string, 0, len(pts)+1)
	attrs := make([]sdp.Attribute, 0, len(pts)+4)
	for _, codec := range pts {
		pt := codec
		if o != nil && o.dynamic[codec] != 0 {
			pt = o.dynamic[codec] // answer with the number the offer used (RFC 3264 §6.1)
		}
		formats = append(formats, strconv.Itoa(int(pt)))
		attrs = append(attrs, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/8000", pt, PayloadName(codec))))
	}
	if dtmf != 0 {
		formats = append(formats, strconv.Itoa(int(dtmf)))
		attrs = append(attrs,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", dtmf)),
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-16", dtmf)))
	}
	attrs = append(attrs, sdp.NewAttribute("ptime", "20"), sdp.NewPropertyAttribute(string(dir)))
	protos := []string{"RTP", "AVP"}
	switch {
	case o != nil && l.keys != nil:
		if secureProto(o.proto) {
			protos = []string{"RTP", "SAVP"}
		}
		ours := cryptoAttr{tag: l.keys.Tag, suite: l.keys.Suite, key: l.keys.LocalKey}
		attrs = append(attrs, sdp.NewAttribute("crypto", ours.String()))
	case o == nil && len(l.offered) > 0:
		if l.secure {
			protos = []string{"RTP", "SAVP"}
		}
		for _, c := range l.offered {
			attrs = append(attrs, sdp.NewAttribute("crypto", c.String()))
		}
	}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "hotline", SessionID: l.id, SessionVersion: l.version,
			NetworkType: "IN", AddressType: ipType, UnicastAddress: l.addr.Addr().String(),
		},
		SessionName:           "hotline",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: ipType, Address: &sdp.Address{Address: l.addr.Addr().String()}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	ours := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media: "audio", Port: sdp.RangedPort{Value: int(l.addr.Port())},
			Protos: protos, Formats: formats,
		},
		Attributes: attrs,
	}
	if o == nil || len(o.mlines) == 0 {
		sd.MediaDescriptions = []*sdp.MediaDescription{ours}
	} else {
		for i, m := range o.mlines {
			if i == o.audio {
				sd.MediaDescriptions = append(sd.MediaDescriptions, ours)
				continue
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: m.media, Port: sdp.RangedPort{Value: 0}, Protos: m.protos, Formats: []string{m.format}},
			})
		}
	}
	b, err := sd.Marshal()
	if err != nil { // cannot happen with the fields above; keep the call alive with a minimal body
		return nil
	}
	return b
}
