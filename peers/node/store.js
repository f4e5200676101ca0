// In-memory state of one process: the de-duplication window and the latest status per session,
// both bounded Maps (insertion order makes the oldest entry the first one).

export class Store {
  constructor({ windowSecs, maxEntries = 100_000 }) {
    this.windowSecs = windowSecs;
    this.maxEntries = maxEntries;
    this.seen = new Map(); // dedup key -> first seen (Unix s)
    this.sessions = new Map(); // session_id -> { ts, status }
  }

  // Records a verified event; returns false when its key was seen within the window.
  accept(key, event, now) {
    const at = this.seen.get(key);
    if (at !== undefined && now - at <= this.windowSecs) return false;
    if (at !== undefined) this.seen.delete(key);
    this.expire(now);
    this.seen.set(key, now);

    const { session_id: sid, status, timestamp: ts } = event;
    if (typeof sid === 'string' && typeof status === 'string') {
      const prev = this.sessions.get(sid);
      // Didit does not promise ordering: an older delivery does not roll a session back.
      if (prev === undefined || prev.ts <= ts) {
        this.sessions.delete(sid);
        this.sessions.set(sid, { ts, status });
        if (this.sessions.size > this.maxEntries) {
          this.sessions.delete(this.sessions.keys().next().value);
        }
      }
    }
    return true;
  }

  // Entries are inserted in time order, so expired ones are at the front.
  expire(now) {
    for (const [k, at] of this.seen) {
      if (now - at <= this.windowSecs && this.seen.size < this.maxEntries) break;
      this.seen.delete(k);
    }
  }
}
