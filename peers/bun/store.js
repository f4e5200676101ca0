// In-memory state of one process: the de-duplication window and the latest status per session,
// both bounded. A Map answers look-ups; a FIFO of insertions says what to drop first, in O(1)
// whatever the engine does with a Map's deleted entries when it is iterated from the front.

class Fifo {
  constructor() {
    this.items = [];
    this.head = 0;
  }

  push(item) {
    this.items.push(item);
  }

  peek() {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift() {
    const item = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class Store {
  constructor({ windowSecs, maxEntries = 100_000 }) {
    this.windowSecs = windowSecs;
    this.maxEntries = maxEntries;
    this.seen = new Map(); // dedup key -> first seen (Unix s)
    this.seenOrder = new Fifo(); // [key, at], oldest first
    this.sessions = new Map(); // session_id -> { ts, status }
    this.sessionOrder = new Fifo(); // session ids, first seen first
  }

  // Records a verified event; returns false when its key was seen within the window.
  accept(key, event, now) {
    const at = this.seen.get(key);
    if (at !== undefined && now - at <= this.windowSecs) return false;
    this.expire(now);
    this.seen.set(key, now);
    this.seenOrder.push([key, now]);

    const { session_id: sid, status, timestamp: ts } = event;
    if (typeof sid === 'string' && typeof status === 'string') {
      const prev = this.sessions.get(sid);
      // Didit does not promise ordering: an older delivery does not roll a session back.
      if (prev === undefined) {
        this.sessions.set(sid, { ts, status });
        this.sessionOrder.push(sid);
        if (this.sessions.size > this.maxEntries) this.sessions.delete(this.sessionOrder.shift());
      } else if (prev.ts <= ts) {
        prev.ts = ts;
        prev.status = status;
      }
    }
    return true;
  }

  // Drops keys older than the window, and the oldest ones beyond maxEntries.
  expire(now) {
    for (let e = this.seenOrder.peek(); e !== undefined; e = this.seenOrder.peek()) {
      const [key, at] = e;
      if (now - at <= this.windowSecs && this.seen.size < this.maxEntries) break;
      this.seenOrder.shift();
      // A key seen again after it expired has a newer entry further on; keep that one.
      if (this.seen.get(key) === at) this.seen.delete(key);
    }
  }
}
