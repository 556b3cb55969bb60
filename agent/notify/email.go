package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

// Mailer sends events as e-mail through an SMTP server (net/smtp).
type Mailer struct {
	host     string
	port     int
	username string
	password string
	from     string
	to       []string
	tlsMode  string // starttls, tls, none
	timeout  time.Duration
	// TLSConfig overrides the TLS settings (tests); ServerName defaults
	// to the host.
	TLSConfig *tls.Config
	Backoff   Backoff
}

// NewMailer checks an e-mail configuration.
func NewMailer(c config.Email) (*Mailer, error) {
	m := &Mailer{
		host: c.Host, port: c.Port, username: c.Username, password: c.Password,
		from: c.From, to: c.To, tlsMode: strings.ToLower(c.TLS), timeout: c.Timeout,
		Backoff: Backoff{Attempts: 3, Base: 2 * time.Second, Max: 30 * time.Second},
	}
	if strings.ContainsAny(m.host, " /:@") {
		return nil, fmt.Errorf("host: %q: want a host name (the port goes in port)", c.Host)
	}
	switch m.tlsMode {
	case "":
		m.tlsMode = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("tls: %q: want starttls, tls or none", c.TLS)
	}
	if m.port == 0 {
		m.port = 587
		if m.tlsMode == "tls" {
			m.port = 465
		}
	}
	if m.port < 1 || m.port > 65535 {
		return nil, fmt.Errorf("port: %d", c.Port)
	}
	if _, err := mail.ParseAddress(m.from); err != nil || m.from == "" {
		return nil, fmt.Errorf("from: %q is not an e-mail address", c.From)
	}
	if len(m.to) == 0 {
		return nil, errors.New("to: no recipient")
	}
	for _, t := range m.to {
		if _, err := mail.ParseAddress(t); err != nil {
			return nil, fmt.Errorf("to: %q is not an e-mail address", t)
		}
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	return m, nil
}

// Notify sends one message about e, retrying connection failures and
// temporary (4xx) SMTP answers.
func (m *Mailer) Notify(ctx context.Context, e Event) error {
	msg := m.message(e)
	return m.Backoff.Do(ctx, func(ctx context.Context) error { return m.send(ctx, msg) })
}

func (m *Mailer) message(e Event) []byte {
	subject := fmt.Sprintf("[redback] backup of %s succeeded", e.Target)
	switch e.Kind {
	case Failed:
		subject = fmt.Sprintf("[redback] backup of %s FAILED", e.Target)
	case DrillFailed:
		subject = fmt.Sprintf("[redback] restore drill of %s FAILED", e.Target)
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, oneLine(v)) }
	hdr("From", m.from)
	hdr("To", strings.Join(m.to, ", "))
	hdr("Subject", subject)
	hdr("Date", e.Time.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@redback>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body := summary(e) + "\n\n"
	if js, err := json.MarshalIndent(e, "", "  "); err == nil {
		body += string(js) + "\n"
	}
	// Normalise line ends to CRLF (textproto's DotWriter does the dots).
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	return b.Bytes()
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

func (m *Mailer) send(ctx context.Context, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	addr := net.JoinHostPort(m.host, strconv.Itoa(m.port))
	tcfg := m.TLSConfig
	if tcfg == nil {
		tcfg = &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if m.tlsMode == "tls" {
		conn = tls.Client(conn, tcfg)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return smtpErr(addr, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello("redback"); err != nil {
		return smtpErr(addr, "EHLO", err)
	}
	if m.tlsMode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent{fmt.Errorf("smtp %s: the server offers no STARTTLS (set tls: none only for a local relay)", addr)}
		}
		if err := c.StartTLS(tcfg); err != nil {
			return smtpErr(addr, "STARTTLS", err)
		}
	}
	if m.username != "" {
		// PlainAuth refuses to send the password over an unencrypted
		// connection except to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.username, m.password, m.host)); err != nil {
			return smtpErr(addr, "AUTH", err)
		}
	}
	if err := c.Mail(m.from); err != nil {
		return smtpErr(addr, "MAIL FROM", err)
	}
	for _, t := range m.to {
		if err := c.Rcpt(t); err != nil {
			return smtpErr(addr, "RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr(addr, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpErr(addr, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr(addr, "DATA", err)
	}
	if err := c.Quit(); err != nil {
		return smtpErr(addr, "QUIT", err)
	}
	return nil
}

// smtpErr wraps an SMTP failure; a 5xx answer is permanent. The AUTH
// exchange's errors hold the server's text, never our password.
func smtpErr(addr, stage string, err error) error {
	err = fmt.Errorf("smtp %s: %s: %w", addr, stage, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent{err}
	}
	return err
}
