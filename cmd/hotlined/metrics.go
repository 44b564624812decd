package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/sip"
)

// sipCollector exports the SIP layer's counters: registrations, the brute-force guard and
// refused INVITEs, read at scrape time.
type sipCollector struct {
	server    *sip.Server
	registrar *sip.Registrar
	reg       *prometheus.Desc
	auth      *prometheus.Desc
	lockouts  *prometheus.Desc
	locked    *prometheus.Desc
	bindings  *prometheus.Desc
	dropped   *prometheus.Desc
	invites   *prometheus.Desc
	shed      *prometheus.Desc
	tcpOpen   *prometheus.Desc
	tcpShut   *prometheus.Desc
}

func newSIPCollector(s *sip.Server, r *sip.Registrar) *sipCollector {
	return &sipCollector{
		server: s, registrar: r,
		reg:      prometheus.NewDesc("hotline_registrar_registrations_total", "REGISTERs answered 200.", nil, nil),
		auth:     prometheus.NewDesc("hotline_registrar_auth_failures_total", "REGISTERs refused by digest auth, by reason (password: unknown user or wrong password; identity: not the To user; locked: user locked out at its source address; source_locked: whole source address locked out).", []string{"reason"}, nil),
		lockouts: prometheus.NewDesc("hotline_registrar_lockouts_total", "Lockouts by the brute-force guard, by scope (user: one user at one source address after repeated wrong answers; source: a whole address after many distinct users failed from it).", []string{"scope"}, nil),
		locked:   prometheus.NewDesc("hotline_registrar_locked", "Lockouts in force now, by scope (user: user and source address pairs; source: whole addresses).", []string{"scope"}, nil),
		bindings: prometheus.NewDesc("hotline_registrar_bindings", "Live registrations (softphone contacts) and the users that have one.", []string{"kind"}, nil),
		dropped:  prometheus.NewDesc("hotline_registrar_bindings_dropped_total", "Bindings removed by expiry or failed qualify pings.", []string{"reason"}, nil),
		invites:  prometheus.NewDesc("hotline_sip_invites_total", "Initial INVITEs by outcome (accepted, rejected: a final error to a trunk, recorded as a lost call; not_found: 404 for a number the trunk does not deliver, not recorded; forbidden: source outside every trunk, not recorded; absorbed: a late retransmission of an INVITE already taken).", []string{"outcome"}, nil),
		tcpOpen:  prometheus.NewDesc("hotline_sip_tcp_connections", "Accepted SIP TCP connections open now.", nil, nil),
		tcpShut:  prometheus.NewDesc("hotline_sip_tcp_connections_closed_total", "SIP TCP connections we closed, by reason (idle: nothing on it for sip.tcp.idle_timeout and no call or registration using it; per_source_cap: refused at accept, its address had sip.tcp.max_per_source open).", []string{"reason"}, nil),
		shed:     prometheus.NewDesc("hotline_sip_shed_total", "Requests dropped unanswered, by method and reason (rate: the source exceeded its per-source rate limit).", []string{"method", "reason"}, nil),
	}
}

func (c *sipCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.reg, c.auth, c.lockouts, c.locked, c.bindings, c.dropped, c.invites, c.shed, c.tcpOpen, c.tcpShut} {
		ch <- d
	}
}

func (c *sipCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := c.server.Stats()
	counter(c.invites, st.Invites, "accepted")
	counter(c.invites, st.Rejected, "rejected")
	counter(c.invites, st.Forbidden, "forbidden")
	counter(c.invites, st.Absorbed, "absorbed")
	counter(c.invites, st.NotFound, "not_found")
	counter(c.shed, st.ShedInvites, "INVITE", sip.ShedRate)
	counter(c.shed, st.ShedRegister, "REGISTER", sip.ShedRate)
	counter(c.tcpShut, st.TCPIdle, sip.TCPClosedIdle)
	counter(c.tcpShut, st.TCPRefused, sip.TCPRefusedPerSource)
	ch <- prometheus.MustNewConstMetric(c.tcpOpen, prometheus.GaugeValue, float64(st.TCPOpen))
	if c.registrar == nil {
		return
	}
	r := c.registrar.Stats()
	counter(c.reg, r.Registrations)
	counter(c.auth, r.AuthFailures, "password")
	counter(c.auth, r.Forbidden, "identity")
	counter(c.auth, r.LockedOut, "locked")
	counter(c.auth, r.SourceLockedOut, "source_locked")
	counter(c.lockouts, r.Lockouts, "user")
	counter(c.lockouts, r.SourceLockouts, "source")
	ch <- prometheus.MustNewConstMetric(c.locked, prometheus.GaugeValue, float64(r.LockedUsers), "user")
	ch <- prometheus.MustNewConstMetric(c.locked, prometheus.GaugeValue, float64(r.LockedSources), "source")
	counter(c.dropped, r.Expired, "expired")
	counter(c.dropped, r.Unreachable, "unreachable")
	ch <- prometheus.MustNewConstMetric(c.bindings, prometheus.GaugeValue, float64(r.Active), "contacts")
	ch <- prometheus.MustNewConstMetric(c.bindings, prometheus.GaugeValue, float64(r.Users), "users")
}
