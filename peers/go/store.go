// The in-memory state of the process: the de-duplication window and the latest status per
// session, both bounded, behind one mutex (every request goroutine shares them, whatever
// GOMAXPROCS is). A map answers look-ups; a FIFO of insertions says what to drop first.

package main

import "sync"

// fifo is a queue on a slice: pushed at the end, taken from head, compacted now and then.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) push(x T) { q.items = append(q.items, x) }

func (q *fifo[T]) peek() (T, bool) {
	if q.head < len(q.items) {
		return q.items[q.head], true
	}
	var zero T
	return zero, false
}

func (q *fifo[T]) shift() T {
	x := q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	if q.head > 4096 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0:0], q.items[q.head:]...)
		q.head = 0
	}
	return x
}

type seenAt struct {
	key string
	at  int64
}

type session struct {
	ts     int64
	status string
}

// Store remembers keys for windowSecs and at most maxEntries keys and sessions.
type Store struct {
	mu           sync.Mutex
	windowSecs   int64
	maxEntries   int
	seen         map[string]int64 // dedup key -> first seen (Unix s)
	seenOrder    fifo[seenAt]     // oldest first
	sessions     map[string]*session
	sessionOrder fifo[string] // session ids, first seen first
}

func NewStore(windowSecs int64, maxEntries int) *Store {
	return &Store{
		windowSecs: windowSecs,
		maxEntries: maxEntries,
		seen:       make(map[string]int64),
		sessions:   make(map[string]*session),
	}
}

// Accept records a verified event; false when its key was seen within the window.
func (s *Store) Accept(v *Verified) bool {
	now := v.VerifiedAt
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.seen[v.Key]; ok && now-at <= s.windowSecs {
		return false
	}
	s.expire(now)
	s.seen[v.Key] = now
	s.seenOrder.push(seenAt{v.Key, now})

	if v.HasSession {
		prev, ok := s.sessions[v.SessionID]
		// Didit does not promise ordering: an older delivery does not roll a session back.
		switch {
		case !ok:
			s.sessions[v.SessionID] = &session{v.Timestamp, v.Status}
			s.sessionOrder.push(v.SessionID)
			if len(s.sessions) > s.maxEntries {
				delete(s.sessions, s.sessionOrder.shift())
			}
		case prev.ts <= v.Timestamp:
			prev.ts, prev.status = v.Timestamp, v.Status
		}
	}
	return true
}

// expire drops keys older than the window, and the oldest ones beyond maxEntries.
func (s *Store) expire(now int64) {
	for e, ok := s.seenOrder.peek(); ok; e, ok = s.seenOrder.peek() {
		if now-e.at <= s.windowSecs && len(s.seen) < s.maxEntries {
			break
		}
		s.seenOrder.shift()
		// A key seen again after it expired has a newer entry further on; keep that one.
		if s.seen[e.key] == e.at {
			delete(s.seen, e.key)
		}
	}
}
