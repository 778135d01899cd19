package redisstore

// Instance queries.
//
// Order. Instances are ordered by (created score, instance id): the created
// score is the created time in unix milliseconds (the score of the
// idx:created and idx:st:<Status> sorted sets), and Redis orders equal scores
// by member bytes, which is Go's string order. A position in that order is a
// cursor; a continuation token is the cursor of the last instance returned.
//
// Sources. Each partition is one source. It reads the index sets the query
// needs (idx:created without a status filter, else idx:st:<S> for each
// requested status) with ZRANGEBYSCORE from its cursor's score, LIMIT n,
// all sets of the partition in one read-only script so that they are read at
// one instant. Members at the cursor's score that are <= the cursor id are
// dropped. When a set returns n members, the source can only vouch for the
// range up to that set's last member; the smallest such last member over the
// sets is the source's frontier, members beyond it are dropped (read again
// later) and the cursor moves to the frontier. So every instance at or before
// the frontier was seen at the instant of the read, whatever status it was
// in — an instance moving between two requested statuses is neither missed
// nor seen twice. Reads never use offsets, which concurrent deletions would
// shift; if every member returned sits at the cursor's score and at or
// before the cursor id (more than n instances created in one millisecond of
// one partition), n is doubled and the read repeated.
//
// Merge. The sources are merged by cursor. A source whose buffer is empty
// and that is not exhausted is read again (all such sources in one pipelined
// round trip) before the next instance is taken, since it may hold the next
// smallest one. The id prefix filter is applied while merging. The page's
// instance hashes are then loaded in one pipelined round trip and each is
// re-checked against the whole filter: one whose status, created time or
// existence changed since the index read is dropped, and more candidates are
// taken until the page is full or the indexes are exhausted.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// Query page sizes.
const (
	// DefaultPageSize is the page size of a query whose PageSize is 0 (or
	// negative).
	DefaultPageSize = 100
	// MaxPageSize is the largest page QueryInstances returns; a larger
	// PageSize is clamped to it (not an error).
	MaxPageSize = 1000
	// maxFetch caps the growth of a source's read size for prefix-filtered
	// queries and purges.
	maxFetch = 1000
	// tokenVersion tags continuation tokens; a token of another version is
	// refused with host.ErrBadToken. Version 1 tokens had no checksum.
	tokenVersion = "2"
)

// cursor is a position in the (created score, instance id) order.
type cursor struct {
	score int64
	id    string
}

func (a cursor) less(b cursor) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.id < b.id
}

// idxEntry is an index member: an instance id at its created score, in
// partition part.
type idxEntry struct {
	cursor
	part int
}

// Continuation tokens. A token is base64url (no padding) of
//
//	"2:<created score>:<instance id>" followed by tokenSumLen bytes of
//	SHA-256("durablewasm continuation token\x00" + hub + "\x00" + the text before)
//
// The checksum makes tokens tamper-evident: a modified, truncated or
// extended token, or one issued by another task hub, fails it. It uses no
// secret, so every process of the hub accepts every token of the hub; it is
// not an authorization (a token only selects where a page starts in a
// query the caller may make anyway). decodeToken also requires the token to
// be exactly the canonical encoding of what it decodes to, so no spelling
// variant (base64 padding bits, inserted line breaks, "+5" or "05" scores)
// is accepted either.
const (
	// tokenSumLen is the number of checksum bytes in a token.
	tokenSumLen = 12
	// maxTokenLen bounds the length of a token accepted (an instance id is
	// at most host.MaxInstanceIDLength characters of up to 4 bytes).
	maxTokenLen = 2048
)

// tokenSum is the checksum of a token's text for this store's hub.
func (s *Store) tokenSum(text []byte) []byte {
	h := sha256.New()
	h.Write([]byte("durablewasm continuation token\x00"))
	h.Write([]byte(s.hub))
	h.Write([]byte{0})
	h.Write(text)
	return h.Sum(nil)[:tokenSumLen]
}

// encodeToken returns the continuation token of c (see Continuation
// tokens above).
func (s *Store) encodeToken(c cursor) string {
	text := []byte(tokenVersion + ":" + strconv.FormatInt(c.score, 10) + ":" + c.id)
	return base64.RawURLEncoding.EncodeToString(append(text, s.tokenSum(text)...))
}

// decodeToken parses a continuation token; "" means "from the start". Any
// token that encodeToken of this hub did not return exactly is refused with
// a wrapped host.ErrBadToken saying why.
func (s *Store) decodeToken(tok string) (cursor, bool, error) {
	if tok == "" {
		return cursor{}, false, nil
	}
	bad := func(why string) error {
		shown := tok
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return fmt.Errorf("continuation token %q: %w: %s (accepted: \"\" to start, or the ContinuationToken of a page this task hub returned, unmodified)", shown, host.ErrBadToken, why)
	}
	if len(tok) > maxTokenLen {
		return cursor{}, false, bad(fmt.Sprintf("it is %d characters long; tokens are at most %d", len(tok), maxTokenLen))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return cursor{}, false, bad("not base64url")
	}
	if len(raw) <= tokenSumLen {
		return cursor{}, false, bad("too short")
	}
	text, sum := raw[:len(raw)-tokenSumLen], raw[len(raw)-tokenSumLen:]
	if !bytes.Equal(sum, s.tokenSum(text)) {
		if strings.HasPrefix(string(raw), "1:") {
			return cursor{}, false, bad("a token of an older version, no longer accepted; list again without a token")
		}
		return cursor{}, false, bad("its checksum does not match: it was modified, truncated or issued by another task hub")
	}
	ver, rest, ok := strings.Cut(string(text), ":")
	if !ok || ver != tokenVersion {
		return cursor{}, false, bad("unknown token version")
	}
	sc, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return cursor{}, false, bad("no instance id")
	}
	score, err := strconv.ParseInt(sc, 10, 64)
	if err != nil {
		return cursor{}, false, bad("bad created time")
	}
	c := cursor{score: score, id: id}
	if s.encodeToken(c) != tok {
		return cursor{}, false, bad("not in canonical form")
	}
	return c, true, nil
}

// filter is a validated host.InstanceQuery filter.
type filter struct {
	statuses []abi.RuntimeStatus // sorted, distinct; nil = any
	from, to time.Time           // zero = unbounded
	prefix   string
	// lo and hi bound the created score (inclusive); loSet/hiSet are false
	// when unbounded.
	lo, hi       int64
	loSet, hiSet bool
}

// newFilter validates q's filter. An unknown status or CreatedTo before
// CreatedFrom is a wrapped host.ErrInvalidInput naming what is accepted.
func newFilter(q host.InstanceQuery) (*filter, error) {
	f := &filter{from: q.CreatedFrom, to: q.CreatedTo, prefix: q.InstanceIDPrefix}
	for _, st := range q.Statuses {
		if st.Value() < 0 {
			names := make([]string, len(abi.AllStatuses))
			for i, s := range abi.AllStatuses {
				names[i] = string(s)
			}
			return nil, fmt.Errorf("%w: unknown runtime status %q (accepted: %s)", host.ErrInvalidInput, st, strings.Join(names, ", "))
		}
		if !slices.Contains(f.statuses, st) {
			f.statuses = append(f.statuses, st)
		}
	}
	slices.Sort(f.statuses)
	if !f.from.IsZero() {
		f.lo, f.loSet = f.from.UnixMilli(), true
	}
	if !f.to.IsZero() {
		f.hi, f.hiSet = f.to.UnixMilli(), true
	}
	if f.loSet && f.hiSet && f.to.Before(f.from) {
		return nil, fmt.Errorf("%w: CreatedTo %s is before CreatedFrom %s, an empty range (accepted: CreatedTo at or after CreatedFrom, or either unbounded)",
			host.ErrInvalidInput, f.to.Format(time.RFC3339Nano), f.from.Format(time.RFC3339Nano))
	}
	return f, nil
}

// hasStatus reports whether st passes the status filter.
func (f *filter) hasStatus(st abi.RuntimeStatus) bool {
	return len(f.statuses) == 0 || slices.Contains(f.statuses, st)
}

// inRange reports whether an exact created time is within the bounds.
func (f *filter) inRange(t time.Time) bool {
	return !(!f.from.IsZero() && t.Before(f.from)) && !(!f.to.IsZero() && t.After(f.to))
}

// needsExact reports whether an index member at score may be outside the
// exact created-time bounds (it sits in a boundary millisecond that the
// bound cuts), so its hash's created time must be checked.
func (f *filter) needsExact(score int64) bool {
	return f.loSet && score == f.lo && f.from.UnixNano()%1e6 != 0 ||
		f.hiSet && score == f.hi && f.to.UnixNano()%1e6 != 999999
}

// match re-checks a loaded instance against the filter and the index score
// it was found at.
func (f *filter) match(st *host.InstanceState, score int64) bool {
	return f.hasStatus(st.Status) && strings.HasPrefix(st.InstanceID, f.prefix) && f.inRange(st.CreatedAt) &&
		createdScore(st.CreatedAt) == strconv.FormatInt(score, 10)
}

// partSource reads one partition's index sets in cursor order.
type partSource struct {
	part int
	keys []string
	f    *filter
	// after: everything at or before it has been read (when hasAfter).
	after    cursor
	hasAfter bool
	buf      []idxEntry
	done     bool // no members beyond the buffer
	n        int  // members read per set
	grow     bool // double n (up to maxFetch) on every read
}

// needsRead reports whether the source must be read before merging.
func (ps *partSource) needsRead() bool { return len(ps.buf) == 0 && !ps.done }

// call builds the read of the source's sets.
func (ps *partSource) call() scriptCall {
	lo := "-inf"
	if ps.f.loSet {
		lo = strconv.FormatInt(ps.f.lo, 10)
	}
	if ps.hasAfter && (!ps.f.loSet || ps.after.score >= ps.f.lo) {
		lo = strconv.FormatInt(ps.after.score, 10)
	}
	hi := "+inf"
	if ps.f.hiSet {
		hi = strconv.FormatInt(ps.f.hi, 10)
	}
	return scriptCall{script: scriptIndexRange, keys: ps.keys, args: []interface{}{lo, hi, ps.n}}
}

// absorb takes the reply of call: one flat member/score list per set.
func (ps *partSource) absorb(reply interface{}) error {
	sets, ok := reply.([]interface{})
	if !ok || len(sets) != len(ps.keys) {
		return fmt.Errorf("index read of partition %d: unexpected reply %T", ps.part, reply)
	}
	var got []idxEntry
	var frontier cursor
	bounded := false
	for _, set := range sets {
		flat, _ := set.([]interface{})
		for i := 0; i+1 < len(flat); i += 2 {
			id, _ := flat[i].(string)
			sc, _ := flat[i+1].(string)
			f, err := strconv.ParseFloat(sc, 64)
			if err != nil || math.IsNaN(f) {
				return fmt.Errorf("index read of partition %d: bad score %q for %q", ps.part, sc, id)
			}
			e := idxEntry{cursor: cursor{score: int64(f), id: id}, part: ps.part}
			if i+2 == len(flat) && len(flat) == 2*ps.n && (!bounded || e.less(frontier)) {
				frontier, bounded = e.cursor, true
			}
			if ps.hasAfter && !ps.after.less(e.cursor) {
				continue
			}
			got = append(got, e)
		}
	}
	if !bounded {
		ps.done = true
	} else {
		if ps.hasAfter && !ps.after.less(frontier) {
			// Every member read is at or before the cursor: more than n
			// members share the cursor's millisecond. Read more next time.
			ps.n *= 2
			return nil
		}
		got = slices.DeleteFunc(got, func(e idxEntry) bool { return frontier.less(e.cursor) })
		ps.after, ps.hasAfter = frontier, true
		if ps.grow && ps.n < maxFetch {
			ps.n = min(2*ps.n, maxFetch)
		}
	}
	slices.SortFunc(got, func(a, b idxEntry) int {
		if a.less(b.cursor) {
			return -1
		}
		if b.less(a.cursor) {
			return 1
		}
		return 0
	})
	ps.buf = append(ps.buf, slices.CompactFunc(got, func(a, b idxEntry) bool { return a.cursor == b.cursor })...)
	return nil
}

// indexKeys returns the index sets a query reads in partition p.
func (s *Store) indexKeys(p int, statuses []abi.RuntimeStatus) []string {
	k := s.parts[p]
	if len(statuses) == 0 {
		return []string{k.idxCreated()}
	}
	keys := make([]string, len(statuses))
	for i, st := range statuses {
		keys[i] = k.idxStatus(st)
	}
	return keys
}

// newSources returns one source per partition reading the sets of statuses
// (idx:created when empty), starting after c when hasAfter, n members per
// set and read.
func (s *Store) newSources(f *filter, statuses []abi.RuntimeStatus, c cursor, hasAfter bool, n int, grow bool) []*partSource {
	srcs := make([]*partSource, s.n)
	for p := range srcs {
		srcs[p] = &partSource{part: p, keys: s.indexKeys(p, statuses), f: f, after: c, hasAfter: hasAfter, n: n, grow: grow}
	}
	return srcs
}

// readSources reads every source that needs it, pipelined, until none does.
// It returns the number of round trips.
func (s *Store) readSources(ctx context.Context, srcs []*partSource) (int, error) {
	trips := 0
	for {
		var calls []scriptCall
		var which []*partSource
		for _, ps := range srcs {
			if ps.needsRead() {
				calls = append(calls, ps.call())
				which = append(which, ps)
			}
		}
		if len(calls) == 0 {
			return trips, nil
		}
		cmds, err := s.runPipelined(ctx, calls)
		trips++
		if err != nil {
			return trips, err
		}
		for i, cmd := range cmds {
			v, err := cmd.Result()
			if err != nil {
				return trips, fmt.Errorf("index read of partition %d: %w", which[i].part, err)
			}
			if err := which[i].absorb(v); err != nil {
				return trips, err
			}
		}
	}
}

// merger merges partition sources in cursor order.
type merger struct {
	s      *Store
	srcs   []*partSource
	prefix string
	peeked *idxEntry
	trips  int // index read round trips
}

// next returns the next index member whose id has the prefix.
func (m *merger) next(ctx context.Context) (idxEntry, bool, error) {
	if e := m.peeked; e != nil {
		m.peeked = nil
		return *e, true, nil
	}
	for {
		n, err := m.s.readSources(ctx, m.srcs)
		m.trips += n
		if err != nil {
			return idxEntry{}, false, err
		}
		var best *partSource
		for _, ps := range m.srcs {
			if len(ps.buf) > 0 && (best == nil || ps.buf[0].less(best.buf[0].cursor)) {
				best = ps
			}
		}
		if best == nil {
			return idxEntry{}, false, nil
		}
		e := best.buf[0]
		best.buf = best.buf[1:]
		if strings.HasPrefix(e.id, m.prefix) {
			return e, true, nil
		}
	}
}

// more reports whether another member follows (without consuming it).
func (m *merger) more(ctx context.Context) (bool, error) {
	e, ok, err := m.next(ctx)
	if ok {
		m.peeked = &e
	}
	return ok, err
}

// loadStates loads the instance hashes of entries in one pipelined round
// trip (go-redis routes each command to its slot's node on a cluster). A
// missing instance is nil.
func (s *Store) loadStates(ctx context.Context, entries []idxEntry) ([]*host.InstanceState, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.HGetAll(ctx, s.parts[e.part].instance(e.id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, err
	}
	out := make([]*host.InstanceState, len(entries))
	for i, c := range cmds {
		h, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("load instance %s: %w", entries[i].id, err)
		}
		if len(h) == 0 {
			continue
		}
		if out[i], err = parseState(entries[i].id, h); err != nil {
			return nil, fmt.Errorf("load instance %s: %w", entries[i].id, err)
		}
	}
	return out, nil
}

// QueryInstances returns one page of the instances matching q, ordered by
// created time (millisecond resolution, the index score) and then instance
// id, across all partitions. It reads only the indexes the filter needs
// (idx:created, or idx:st:<S> of each requested status) from the
// continuation point on, never the whole hub; CreatedFrom and CreatedTo are
// inclusive and exact (to the nanosecond), InstanceIDPrefix is applied to the
// ids read from the indexes. PageSize defaults to DefaultPageSize and is
// clamped to MaxPageSize. Each instance is re-checked against q after its
// state is loaded, so one that changed since the index read is left out.
//
// The continuation token names the last instance returned (its created ms
// and id) with a checksum over both and the hub name; it is "" when no
// matching instance follows.
// Paging is stable under concurrent writes: an instance that matches q
// throughout appears exactly once, whatever is created, changed or purged
// meanwhile. A token that no Store of this hub issued, or an issued token
// with any change, returns a wrapped host.ErrBadToken; a filter that cannot
// be served (an unknown status, CreatedTo before CreatedFrom) returns a
// wrapped host.ErrInvalidInput.
func (s *Store) QueryInstances(ctx context.Context, q host.InstanceQuery) (*host.InstancePage, error) {
	page, _, err := s.queryInstances(ctx, q)
	return page, err
}

// queryStats counts the round trips of a query (for tests and benchmarks).
type queryStats struct {
	indexTrips, loadTrips int
}

func (s *Store) queryInstances(ctx context.Context, q host.InstanceQuery) (*host.InstancePage, queryStats, error) {
	const op = "query instances"
	var stats queryStats
	size := q.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	after, hasAfter, err := s.decodeToken(q.ContinuationToken)
	if err != nil {
		return nil, stats, fmt.Errorf("%s: %w", op, err)
	}
	f, err := newFilter(q)
	if err != nil {
		return nil, stats, fmt.Errorf("%s: %w", op, err)
	}
	grow := f.prefix != ""
	m := &merger{s: s, srcs: s.newSources(f, f.statuses, after, hasAfter, size+1, grow), prefix: f.prefix}
	page := &host.InstancePage{Instances: []host.InstanceState{}}
	var last cursor
	for len(page.Instances) < size {
		need := size - len(page.Instances)
		cands := make([]idxEntry, 0, need)
		for len(cands) < need {
			e, ok, err := m.next(ctx)
			if err != nil {
				return nil, stats, fmt.Errorf("%s: %w", op, err)
			}
			if !ok {
				break
			}
			cands = append(cands, e)
		}
		if len(cands) == 0 {
			break
		}
		sts, err := s.loadStates(ctx, cands)
		stats.loadTrips++
		if err != nil {
			return nil, stats, fmt.Errorf("%s: %w", op, err)
		}
		for i, st := range sts {
			if st != nil && f.match(st, cands[i].score) {
				page.Instances = append(page.Instances, *st)
			}
		}
		last = cands[len(cands)-1].cursor
		if len(cands) < need {
			break
		}
	}
	if len(page.Instances) == size {
		more, err := m.more(ctx)
		if err != nil {
			return nil, stats, fmt.Errorf("%s: %w", op, err)
		}
		if more {
			page.ContinuationToken = s.encodeToken(last)
		}
	}
	stats.indexTrips = m.trips
	return page, stats, nil
}
