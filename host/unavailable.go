package host

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Unavailable reports whether err says the store could not be reached, or
// answered that it cannot serve for now, rather than giving a definite
// answer: a network error (connection refused, reset or closed, a timeout,
// EOF), a canceled or expired context, a connection pool timeout, or a Redis
// reply such as LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, READONLY, BUSY,
// NOREPLICAS, MOVED or ASK (as the reply itself or inside a wrapping
// message: "<op>: LOADING Redis is loading …"). A write that failed this way
// may or may not have been applied. The sentinel errors of this package and
// other Redis replies are definite answers.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "connection pool timeout",
		"use of closed network connection", "client is closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return HasReplyCode(err, "LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY", "NOREPLICAS", "MOVED", "ASK")
}

// HasReplyCode reports whether err is, or wraps in its message, a Redis
// error reply starting with one of codes ("OOM command not allowed …" has
// the code OOM).
func HasReplyCode(err error, codes ...string) bool {
	for _, seg := range strings.Split(err.Error(), ": ") {
		code, _, _ := strings.Cut(seg, " ")
		for _, c := range codes {
			if code == c {
				return true
			}
		}
	}
	return false
}
