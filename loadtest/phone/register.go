package phone

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Register registers the phone as user at registrar (HOST:PORT) with digest auth, as an
// agent's softphone does; expires 0 unregisters. It returns the final status as an error
// unless it is 200.
func (p *Phone) Register(ctx context.Context, registrar, user, password string, expires time.Duration) error {
	host, port, err := sip.ParseAddr(registrar)
	if err != nil {
		return fmt.Errorf("phone: registrar %q: %w", registrar, err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	aor := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: aor, Params: sip.NewParams()}
	a := p.Addr()
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: a.Addr().String(), Port: int(a.Port())}}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: REGISTER: %w", err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
		if err != nil {
			return fmt.Errorf("phone: REGISTER with auth: %w", err)
		}
	}
	if res.StatusCode != 200 {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}
