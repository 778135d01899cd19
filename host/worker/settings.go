package worker

import (
	"context"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/host/replay"
)

// settingsTTL is how long a worker caches a module's settings; a redeploy
// with new settings reaches running workers within it.
const settingsTTL = 10 * time.Second

type cachedSettings struct {
	st      *host.AppSettings
	fetched time.Time
}

// settingsCache holds module settings by digest.
type settingsCache struct {
	mu sync.Mutex
	m  map[string]cachedSettings
}

// settings returns the settings of the module with digest (zero settings if
// they cannot be read: the worker's defaults then apply).
func (w *Worker) settings(ctx context.Context, digest string) *host.AppSettings {
	w.set.mu.Lock()
	c, ok := w.set.m[digest]
	w.set.mu.Unlock()
	if ok && time.Since(c.fetched) < settingsTTL {
		return c.st
	}
	st, err := w.store.GetModuleSettings(ctx, digest)
	if err != nil {
		if ok {
			return c.st
		}
		w.log.Warn("cannot read module settings; using defaults", "digest", digest, "err", err)
		return &host.AppSettings{}
	}
	w.set.mu.Lock()
	if w.set.m == nil {
		w.set.m = map[string]cachedSettings{}
	}
	w.set.m[digest] = cachedSettings{st: st, fetched: time.Now()}
	w.set.mu.Unlock()
	return st
}

// limits returns the replay limits of the module with digest: its settings
// over the worker's.
func (w *Worker) limits(ctx context.Context, digest string) replay.Limits {
	l := w.opts.Limits
	st := w.settings(ctx, digest)
	if st.MaxPayloadBytes > 0 {
		l.MaxPayloadBytes = st.MaxPayloadBytes
	}
	if st.MaxHistoryEvents > 0 {
		l.MaxHistoryEvents = st.MaxHistoryEvents
	}
	return l.WithDefaults()
}
