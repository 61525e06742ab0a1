// Load generator for bench/hub_fanout.py: N WebSocket clients (Node `ws`), frame accounting,
// latency histograms, loss and final-state checks. Driven over stdin, one command a line:
//   start          reset the counters and open the measurement window
//   stop           close the window; print its figures
//   drain <ms>     wait (at most <ms>) until the server has closed every client; print the
//                  final-state check (the harness stops the server meanwhile)
// Every reply is one JSON line on stdout; diagnostics go to stderr.
//
// argv[2] is a JSON config: {url, clients, stores, mode: "ratehub" | "plain", verifyEvery,
// concurrency, connectTimeoutMs, rateWindow, deflate, ack, ackEveryMs}. `url` may hold
// `{store}`, replaced by `s<i % stores>`. With `ack`, every client confirms the rate frames
// it receives with `{"type":"ack","data":{"checksum","seq"}}` (the frame's checksum and seq;
// plain: the seq only), as a store terminal does: every frame, or with `ackEveryMs` the
// newest one at most that often (and the last one always, once the interval is up).
//
// Per frame the common path does no JSON parsing: it scans the raw bytes for the top-level
// "timestamp" (ratehub: when the hub closed the batch window; plain: when it broadcast), the
// rates' own "timestamp" (ratehub: when the engine priced the tick; lean frames leave the
// provenance out, so its "marketTimestamp" is not in every frame), "checksum",
// "seq" and "sentAt" (plain: float epoch seconds). Every `verifyEvery`-th client also parses
// each frame, keeps its rate table and recomputes the hub's checksum after every frame.
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { WebSocket } from "ws";

const cfg = JSON.parse(process.argv[2]);
const MODE = cfg.mode;
const STORES = cfg.stores ?? 10;
const VERIFY_EVERY = cfg.verifyEvery ?? 10;
const RATE_WINDOW = Boolean(cfg.rateWindow);
const ACK = Boolean(cfg.ack);
const ACK_EVERY_MS = cfg.ackEveryMs ?? 0;

// -- clock: epoch milliseconds with sub-millisecond resolution ------------------------------
// The monotonic clock drifts from the wall clock (0.1 ms/s has been seen on a VM), so it is
// re-aligned every 250 ms while measuring.
let offset = performance.timeOrigin;
let calTimer = null;
function calibrate() {
  // Align the monotonic clock on the wall clock at a millisecond edge (error ~ 10 us).
  const start = Date.now();
  let ms = start;
  while (ms === start) ms = Date.now();
  offset = ms - performance.now();
}
const now = () => offset + performance.now();

// -- byte scanning ----------------------------------------------------------------------------
const K_RATE = Buffer.from('{"type":"rate_update"');
const K_END = Buffer.from('{"type":"end"');
const K_TS = Buffer.from('"timestamp":');
const K_CK = Buffer.from('"checksum":"');
const K_SEQ = Buffer.from('"seq":');
const K_SENT = Buffer.from('"sentAt":');
const K_ERROR = Buffer.from('{"type":"error"');

function startsWith(buf, key) {
  return buf.length >= key.length && buf.compare(key, 0, key.length, 0, key.length) === 0;
}

function intAt(buf, i) {
  let v = 0;
  for (let c = buf[i]; c >= 48 && c <= 57; c = buf[++i]) v = v * 10 + (c - 48);
  return v;
}

function floatAt(buf, i) {
  let j = i;
  while (j < buf.length && buf[j] !== 44 && buf[j] !== 125) j++; // up to ',' or '}'
  return Number(buf.toString("latin1", i, j));
}

// The newest rate "timestamp" of a frame: every occurrence before the frame's own (the last).
function maxRateTs(buf, top) {
  let best = -1;
  for (let i = buf.indexOf(K_TS); i >= 0 && i < top; i = buf.indexOf(K_TS, i + K_TS.length)) {
    const v = intAt(buf, i + K_TS.length);
    if (v > best) best = v;
  }
  return best;
}

// -- the hub's checksum (daemon/ratehubd/hub/hub.py `checksum`) ---------------------------------------
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
function crc32hex(text) {
  const bytes = Buffer.from(text);
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ((c ^ -1) >>> 0).toString(16).padStart(8, "0");
}
function tableChecksum(table) {
  const parts = [];
  for (const [pair, [buy, sell]] of table) {
    const b = buy === undefined ? "undefined" : String(buy);
    const s = sell === undefined ? "undefined" : String(sell);
    parts.push(`${pair}=${b}/${s};`);
  }
  parts.sort();
  return crc32hex(parts.join(""));
}

// -- histograms: 0.1 ms bins up to 10 s ------------------------------------------------------
const BINS = 100_000;
class Hist {
  constructor() {
    this.bins = new Uint32Array(BINS + 1);
    this.n = 0;
    this.max = 0;
    this.negative = 0;
  }
  add(ms) {
    if (ms < 0) {
      this.negative++;
      ms = 0;
    }
    const b = Math.min(BINS, Math.floor(ms * 10));
    this.bins[b]++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  pct(q) {
    if (this.n === 0) return null;
    const want = Math.ceil(q * this.n);
    let seen = 0;
    for (let b = 0; b <= BINS; b++) {
      seen += this.bins[b];
      if (seen >= want) return (b + 0.5) / 10;
    }
    return this.max;
  }
  summary() {
    const r = (x) => (x === null ? null : Math.round(x * 100) / 100);
    return {
      samples: this.n,
      p50: r(this.pct(0.5)),
      p90: r(this.pct(0.9)),
      p99: r(this.pct(0.99)),
      p999: r(this.pct(0.999)),
      max: r(this.max),
      negative: this.negative,
    };
  }
}

// -- clients ----------------------------------------------------------------------------------
const clients = [];
const storeTs = Array.from({ length: STORES }, () => new Set()); // frame timestamps in window
let measuring = false;
let sendHist = new Hist(); // ratehub: window close -> client; plain: broadcast -> client
let tickHist = new Hist(); // tick -> client
let ageHist = new Hist(); // ratehub: window close - newest tick (how fresh the values are)
let windowStart = 0;
let cpuStart = process.cpuUsage();
let finalSeq = null;
const events = { opened: 0, failed: 0, errors: [] };
const acks = { sent: 0, errors: 0, firstError: null }; // in the window

function newClient(i) {
  return {
    i,
    store: i % STORES,
    verify: VERIFY_EVERY > 0 && i % VERIFY_EVERY === 0,
    ws: null,
    open: false,
    closeCode: null,
    closeReason: "",
    n: 0, // rate frames in the window
    bytes: 0,
    first: -1, // server timestamps of the first and last frame in the window
    last: -1,
    lastTs: -1, // over the connection's life
    lastChecksum: "",
    lastSeq: -1,
    gapsWindow: 0,
    gapsLife: 0,
    gotEnd: false,
    table: new Map(),
    verified: 0,
    mismatches: 0,
    recent: [], // server timestamps within the last second (rateWindow)
    maxPerSecond: 0,
    closedInWindow: false,
    ackSeq: -1, // the newest frame's seq, its checksum is lastChecksum
    ackedAt: -Infinity,
    ackTimer: null,
  };
}

function onFrame(c, buf) {
  const t = now();
  if (!startsWith(buf, K_RATE)) {
    if (ACK && measuring && startsWith(buf, K_ERROR)) {
      acks.errors++;
      acks.firstError ??= buf.toString();
    }
    if (MODE === "plain" && startsWith(buf, K_END)) {
      c.gotEnd = true;
      const i = buf.lastIndexOf(K_SEQ);
      if (i >= 0) finalSeq = intAt(buf, i + K_SEQ.length);
    }
    return;
  }
  const ti = buf.lastIndexOf(K_TS);
  const ts = ti >= 0 ? intAt(buf, ti + K_TS.length) : -1;
  c.lastTs = ts;
  if (MODE === "plain") {
    const si = buf.lastIndexOf(K_SEQ);
    const seq = intAt(buf, si + K_SEQ.length);
    if (c.lastSeq >= 0 && seq !== c.lastSeq + 1) {
      const gap = Math.max(0, seq - c.lastSeq - 1);
      c.gapsLife += gap;
      if (measuring) c.gapsWindow += gap;
    }
    c.lastSeq = seq;
  } else {
    const ci = buf.indexOf(K_CK);
    if (ci >= 0) c.lastChecksum = buf.toString("latin1", ci + K_CK.length, ci + K_CK.length + 8);
  }
  if (ACK) ack(c, buf, t);
  if (c.verify) verifyFrame(c, buf);
  if (!measuring) return;
  c.n++;
  c.bytes += buf.length;
  if (c.first < 0) c.first = ts;
  c.last = ts;
  if (MODE === "plain") {
    const sent = floatAt(buf, buf.lastIndexOf(K_SENT) + K_SENT.length) * 1000;
    sendHist.add(t - sent);
    tickHist.add(t - sent);
  } else {
    storeTs[c.store].add(ts);
    sendHist.add(t - ts);
    const mts = maxRateTs(buf, ti);
    if (mts > 0) {
      tickHist.add(t - mts);
      ageHist.add(ts - mts);
    }
  }
  if (RATE_WINDOW) {
    c.recent.push(ts);
    while (c.recent.length && c.recent[0] <= ts - 1000) c.recent.shift();
    if (c.recent.length > c.maxPerSecond) c.maxPerSecond = c.recent.length;
  }
}

function ack(c, buf, t) {
  const si = buf.lastIndexOf(K_SEQ);
  c.ackSeq = si >= 0 ? intAt(buf, si + K_SEQ.length) : -1;
  if (ACK_EVERY_MS === 0 || t - c.ackedAt >= ACK_EVERY_MS) sendAck(c, t);
  else c.ackTimer ??= setTimeout(() => sendAck(c, now()), c.ackedAt + ACK_EVERY_MS - t);
}

function sendAck(c, t) {
  clearTimeout(c.ackTimer);
  c.ackTimer = null;
  c.ackedAt = t;
  if (!c.open) return;
  const seq = c.ackSeq >= 0 ? `"seq":${c.ackSeq}` : "";
  const sum = MODE === "plain" ? "" : `"checksum":"${c.lastChecksum}"${seq ? "," : ""}`;
  c.ws.send(`{"type":"ack","data":{${sum}${seq}},"timestamp":${Date.now()}}`);
  if (measuring) acks.sent++;
}

function verifyFrame(c, buf) {
  // Plain frames are parsed too, so that both servers' clients do the same work.
  const msg = JSON.parse(buf.toString());
  const data = msg.data ?? {};
  if (MODE === "plain") {
    c.verified++;
    if (data.rates?.length !== 5) c.mismatches++;
    return;
  }
  if (data.snapshot) c.table.clear();
  for (const r of data.rates ?? []) c.table.set(r.currencyPair, [r.buyRate, r.sellRate]);
  c.verified++;
  if (data.checksum !== undefined && tableChecksum(c.table) !== data.checksum) c.mismatches++;
}

function connect(i) {
  const c = clients[i];
  const url = cfg.url.replaceAll("{store}", `s${c.store}`);
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: Boolean(cfg.deflate), // browsers offer it; off unless asked
      skipUTF8Validation: true,
      handshakeTimeout: cfg.connectTimeoutMs ?? 20000,
    });
    c.ws = ws;
    let settled = false;
    const settle = (ok, why) => {
      if (settled) return;
      settled = true;
      if (ok) events.opened++;
      else {
        events.failed++;
        if (events.errors.length < 5) events.errors.push(why);
      }
      resolve();
    };
    ws.on("open", () => {
      c.open = true;
      settle(true);
    });
    ws.on("message", (data) => onFrame(c, data));
    ws.on("error", (err) => settle(false, String(err.message ?? err)));
    ws.on("unexpected-response", (_req, res) => {
      settle(false, `HTTP ${res.statusCode} at the upgrade`);
      ws.terminate();
    });
    ws.on("close", (code, reason) => {
      c.open = false;
      c.closeCode = code;
      c.closeReason = reason.toString();
      if (measuring) c.closedInWindow = true;
      settle(false, `closed ${code} before open`);
      checkDrained();
    });
  });
}

async function connectAll() {
  const t0 = now();
  for (let i = 0; i < cfg.clients; i++) clients.push(newClient(i));
  let next = 0;
  const worker = async () => {
    while (next < clients.length) await connect(next++);
  };
  await Promise.all(Array.from({ length: cfg.concurrency ?? 100 }, worker));
  emit({ event: "connected", ...events, ms: Math.round(now() - t0) });
}

// -- reports ----------------------------------------------------------------------------------
function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function pctOf(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function countIn(sorted, lo, hi) {
  // how many values v with lo <= v <= hi
  const lower = (x) => {
    let a = 0;
    let b = sorted.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (sorted[m] < x) a = m + 1;
      else b = m;
    }
    return a;
  };
  return lower(hi + 0.5) - lower(lo);
}

function windowReport() {
  const seconds = (now() - windowStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const counts = clients.map((c) => c.n).sort((a, b) => a - b);
  const frames = counts.reduce((a, b) => a + b, 0);
  const bytes = clients.reduce((a, c) => a + c.bytes, 0);
  const out = {
    event: "window",
    seconds,
    clients: clients.length,
    open: clients.filter((c) => c.open).length,
    closedInWindow: clients.filter((c) => c.closedInWindow).length,
    frames,
    bytes,
    framesPerSecond: frames / seconds,
    perClientFramesPerSecond: {
      min: (counts[0] ?? 0) / seconds,
      p1: (pctOf(counts, 0.01) ?? 0) / seconds,
      p50: (pctOf(counts, 0.5) ?? 0) / seconds,
      max: (counts[counts.length - 1] ?? 0) / seconds,
    },
    sendToClientMs: sendHist.summary(),
    tickToClientMs: tickHist.summary(),
    loadgenCpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / seconds,
  };
  if (MODE === "plain") {
    out.lost = clients.reduce((a, c) => a + c.gapsWindow, 0);
    out.lostHow = "sequence gaps within the window, all clients";
  } else {
    // A frame the hub produced for a store (some client of the store received it) that one
    // of the store's clients did not receive, between its first and last frame of the window.
    const sorted = storeTs.map((s) => [...s].sort((a, b) => a - b));
    let missing = 0;
    for (const c of clients) {
      const all = sorted[c.store];
      missing += c.n === 0 ? all.length : countIn(all, c.first, c.last) - c.n;
    }
    out.lost = missing;
    out.lostHow = "store frames (window timestamps) a client of the store did not receive";
    const iv = [];
    for (let k = 1; k < sorted[0].length; k++) iv.push(sorted[0][k] - sorted[0][k - 1]);
    iv.sort((a, b) => a - b);
    out.storeFramesPerSecond = sorted.reduce((a, s) => a + s.length, 0) / STORES / seconds;
    out.flushIntervalMs = { p50: pctOf(iv, 0.5), p99: pctOf(iv, 0.99), max: iv.at(-1) ?? null };
    out.valueAgeMs = ageHist.summary();
  }
  if (ACK) Object.assign(out, { acksSent: acks.sent, ackErrors: acks.errors, firstAckError: acks.firstError });
  out.verifiedClients = clients.filter((c) => c.verify).length;
  out.verifiedFrames = clients.reduce((a, c) => a + c.verified, 0);
  out.checksumMismatches = clients.reduce((a, c) => a + c.mismatches, 0);
  if (RATE_WINDOW) {
    const mx = clients.map((c) => c.maxPerSecond).sort((a, b) => a - b);
    out.maxFramesInAnySecond = mx.at(-1) ?? 0;
  }
  return out;
}

function finalReport() {
  const codes = {};
  for (const c of clients) codes[c.closeCode ?? "open"] = (codes[c.closeCode ?? "open"] ?? 0) + 1;
  const out = { event: "final", closeCodes: codes, clients: clients.length };
  const bad = [];
  if (MODE === "plain") {
    let ok = 0;
    for (const c of clients) {
      if (c.gotEnd && c.lastSeq === finalSeq && c.gapsLife === 0) ok++;
      else if (bad.length < 5) bad.push({ i: c.i, lastSeq: c.lastSeq, gaps: c.gapsLife });
    }
    Object.assign(out, { finalSeq, finalOk: ok, lostLife: clients.reduce((a, c) => a + c.gapsLife, 0) });
  } else {
    // The reference per store: the newest frame any of its clients holds. Every client must
    // hold that frame (same window timestamp, same checksum of the whole rate table).
    const ref = Array.from({ length: STORES }, () => ({ ts: -1, checksum: "" }));
    for (const c of clients) if (c.lastTs > ref[c.store].ts) ref[c.store] = { ts: c.lastTs, checksum: c.lastChecksum };
    let ok = 0;
    for (const c of clients) {
      const r = ref[c.store];
      if (c.lastTs === r.ts && c.lastChecksum === r.checksum) ok++;
      else if (bad.length < 5) bad.push({ i: c.i, store: c.store, lastTs: c.lastTs, ref: r.ts });
    }
    Object.assign(out, { finalOk: ok, checksumMismatchesLife: clients.reduce((a, c) => a + c.mismatches, 0) });
  }
  out.finalBad = bad;
  return out;
}

let drainResolve = null;
function checkDrained() {
  if (drainResolve && clients.every((c) => !c.open)) {
    const r = drainResolve;
    drainResolve = null;
    r();
  }
}

async function drain(ms) {
  await new Promise((resolve) => {
    drainResolve = resolve;
    setTimeout(() => {
      if (drainResolve) {
        drainResolve = null;
        resolve();
      }
    }, ms);
    checkDrained();
  });
  emit(finalReport());
}

// -- main -------------------------------------------------------------------------------------
const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === "start") {
    calibrate();
    calTimer = setInterval(calibrate, 250);
    for (const c of clients) {
      Object.assign(c, { n: 0, bytes: 0, first: -1, last: -1, gapsWindow: 0, closedInWindow: false });
      c.recent = [];
      c.maxPerSecond = 0;
    }
    for (const s of storeTs) s.clear();
    Object.assign(acks, { sent: 0, errors: 0, firstError: null });
    sendHist = new Hist();
    tickHist = new Hist();
    ageHist = new Hist();
    windowStart = now();
    cpuStart = process.cpuUsage();
    measuring = true;
    emit({ event: "started" });
  } else if (cmd === "stop") {
    measuring = false;
    clearInterval(calTimer);
    emit(windowReport());
  } else if (cmd === "drain") {
    await drain(Number(arg ?? 15000));
    process.exit(0);
  } else if (cmd === "quit") {
    process.exit(0);
  } else {
    process.stderr.write(`loadgen: unknown command ${JSON.stringify(line)}\n`);
  }
});
rl.on("close", () => process.exit(0));

connectAll();
