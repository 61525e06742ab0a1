// The store rate board: a confirming terminal built on ratehub's public protocol only.
//
// It follows the store's channel on /api/rates/websocket (clientType=store_os), applies
// every rate frame to its table, checks the table against the frame's checksum (CRC-32 of
// "PAIR=buy/sell;" sorted by pair, numbers as String() prints them) and acknowledges it
// with {"type": "ack", "data": {"checksum", "seq"}}: head office sees this screen as
// current or stale. It resumes by lastSeq/epoch after a reconnect, and when it has no live
// data (disconnected for longer than offlineAfterMs, or a pair stale or its breaker open)
// it says so instead of showing an old rate as if it were current.
"use strict";

(function () {
  const cfg = JSON.parse(document.getElementById("board-config").textContent);
  const NAMES = {
    USD: "US dollar", EUR: "Euro", GBP: "British pound", JPY: "Japanese yen",
    CHF: "Swiss franc", AUD: "Australian dollar", MXN: "Mexican peso", CNY: "Chinese yuan",
    INR: "Indian rupee", HKD: "Hong Kong dollar", CAD: "Canadian dollar",
    BTC: "Bitcoin", ETH: "Ether",
  };

  // The key: from the URL once, then out of the address bar (never on screen).
  const storageKey = "ratehub-board-token:" + location.pathname + ":" + (cfg.storeId || "");
  const url = new URL(location.href);
  let token = url.searchParams.get("token");
  if (token) {
    try { sessionStorage.setItem(storageKey, token); } catch (e) { /* private mode */ }
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  } else {
    try { token = sessionStorage.getItem(storageKey); } catch (e) { token = null; }
  }

  const state = {
    rates: new Map(),     // pair -> rate object, the table as the hub holds it for us
    decimals: new Map(),  // pair -> digits after the point (from the pair's tick)
    lastSeq: null,
    epoch: null,
    live: false,          // connected and hearing from the hub
    lastMessageAt: 0,
    disconnectedAt: Date.now(),
    acks: 0,
    resumeFrom: null,     // the lastSeq this connection resumed from
    resumed: null,        // {from, recovered} of the last resume
    mismatches: 0,
    refused: null,
    ws: null,
    retryMs: 500,
  };
  window.ratehubBoard = state;  // for tests and for staff debugging in the console

  // -- checksum (the hub's definition) ---------------------------------------------------
  const CRC_TABLE = (function () {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();

  function crc32(text) {
    const bytes = new TextEncoder().encode(text);
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
  }

  function checksum(rates) {
    const parts = [];
    for (const r of rates.values()) {
      parts.push(r.currencyPair + "=" + String(r.buyRate) + "/" + String(r.sellRate) + ";");
    }
    parts.sort();
    return crc32(parts.join(""));
  }

  // -- the connection --------------------------------------------------------------------
  function wsUrl() {
    const q = new URLSearchParams({ clientType: "store_os" });
    if (cfg.storeId) q.set("storeId", cfg.storeId);
    if (token) q.set("token", token);
    if (state.lastSeq !== null && state.epoch !== null) {
      q.set("lastSeq", String(state.lastSeq));
      q.set("epoch", state.epoch);
    }
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      cfg.wsPath + "?" + q.toString();
  }

  function connect() {
    if (!token) {
      refuse("This board has no key: open the URL that `ratectl board-url` printed.");
      return;
    }
    state.resumeFrom = state.lastSeq;
    const ws = new WebSocket(wsUrl());
    state.ws = ws;
    ws.onopen = function () { state.retryMs = 500; };
    ws.onmessage = function (ev) {
      state.lastMessageAt = Date.now();
      if (!state.live) { state.live = true; render(); }
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      onMessage(ws, msg);
    };
    ws.onclose = function (ev) {
      if (state.ws !== ws) return;
      state.ws = null;
      if (state.live) state.disconnectedAt = Date.now();
      state.live = false;
      if (ev.code === 1008) {
        refuse("This board's key was refused (" + (ev.reason || "policy") +
          "): make a new board URL with `ratectl board-url`.");
        return;
      }
      render();
      setTimeout(connect, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 5000);
    };
  }

  function refuse(text) {
    state.refused = text;
    document.body.classList.add("refused");
    render();
  }

  function onMessage(ws, msg) {
    if (typeof msg.seq === "number" && msg.type !== "welcome") state.lastSeq = msg.seq;
    if (typeof msg.epoch === "string") state.epoch = msg.epoch;
    if (msg.type === "welcome") {
      state.epoch = msg.data.epoch;
      return;
    }
    if (msg.type !== "rate_update" || !msg.data || !Array.isArray(msg.data.rates)) return;
    const data = msg.data;
    if (data.snapshot) {
      state.rates.clear();
      // A resume's snapshot says whether every event since resumeFrom was replayed.
      if ("recovered" in data) state.resumed = { from: state.resumeFrom, recovered: data.recovered };
    }
    for (const partial of data.rates) {
      // Lean frames leave out what did not change (provenance, stale, ...): merge.
      const r = Object.assign({}, state.rates.get(partial.currencyPair), partial);
      state.rates.set(r.currencyPair, r);
      const tick = r.provenance && r.provenance.tick;
      if (typeof tick === "number" && tick > 0) {
        state.decimals.set(r.currencyPair, Math.max(0, Math.round(-Math.log10(tick))));
      }
    }
    render();
    if (typeof data.checksum !== "string") return;
    if (checksum(state.rates) === data.checksum) {
      ack(ws, { checksum: data.checksum, seq: msg.seq });
    } else {
      // Our table is not the hub's: start again from a fresh snapshot rather than confirm it.
      state.mismatches += 1;
      state.lastSeq = null;
      ws.close(4000, "checksum mismatch; resynchronising");
    }
  }

  // At most one ack per ACK_EVERY_MS (acks count against the connection's message
  // limit, and frames may come every 50 ms); the newest table is always acked last.
  const ACK_EVERY_MS = 250;
  let ackTimer = null, ackLast = 0, ackPending = null;
  function ack(ws, data) {
    ackPending = { ws: ws, data: data };
    if (ackTimer !== null) return;
    const wait = Math.max(0, ackLast + ACK_EVERY_MS - Date.now());
    ackTimer = setTimeout(function () {
      ackTimer = null;
      const p = ackPending;
      ackPending = null;
      if (p === null || p.ws.readyState !== WebSocket.OPEN) return;
      ackLast = Date.now();
      p.ws.send(JSON.stringify({ type: "ack", data: p.data, timestamp: ackLast }));
      state.acks += 1;
    }, wait);
  }

  // -- the screen ------------------------------------------------------------------------
  function shown() {
    const pairs = cfg.pairs && cfg.pairs.length ? cfg.pairs : Array.from(state.rates.keys()).sort();
    return pairs.filter(function (p) { return state.rates.has(p); }).map(function (p) {
      return state.rates.get(p);
    });
  }

  function fmt(pair, value) {
    const d = state.decimals.get(pair);
    return d === undefined ? String(value) : Number(value).toFixed(d);
  }

  function offline() {
    return !state.live && Date.now() - state.disconnectedAt > cfg.offlineAfterMs;
  }

  function render() {
    const body = document.body;
    const isOffline = offline() && !state.refused;
    body.classList.toggle("offline", isOffline);
    body.classList.toggle("connecting", !state.live && !isOffline && !state.refused);
    const banner = document.getElementById("banner");
    if (state.refused) banner.textContent = state.refused;
    else if (isOffline) banner.textContent = "Rates not live: reconnecting. Ask staff for today's rate.";
    else if (!state.live) banner.textContent = "Connecting…";
    else banner.textContent = "";

    const tbody = document.querySelector("#rates tbody");
    const rows = [];
    let newest = 0;
    for (const r of shown()) {
      newest = Math.max(newest, r.timestamp || 0);
      const tr = document.createElement("tr");
      tr.dataset.pair = r.currencyPair;
      const name = document.createElement("td");
      const code = document.createElement("span");
      code.className = "code";
      code.textContent = r.baseCurrency;
      const long = document.createElement("span");
      long.className = "name";
      long.textContent = NAMES[r.baseCurrency] || r.currencyPair;
      name.append(code, long);
      const buy = document.createElement("td");   // we buy = the customer's sellRate
      const sell = document.createElement("td");  // we sell = the customer's buyRate
      buy.className = sell.className = "num";
      buy.dataset.side = "sellRate";
      sell.dataset.side = "buyRate";
      if (isOffline || state.refused) {
        buy.textContent = sell.textContent = "—";
      } else if (r.stale) {
        tr.className = "stale";
        buy.textContent = sell.textContent = "unavailable";
      } else {
        buy.textContent = fmt(r.currencyPair, r.sellRate);
        sell.textContent = fmt(r.currencyPair, r.buyRate);
      }
      tr.append(name, buy, sell);
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
    const updated = document.getElementById("updated");
    if (newest && !isOffline) {
      updated.textContent = "Updated " + new Date(newest).toLocaleTimeString();
    } else if (isOffline) {
      updated.textContent = "Not live since " + new Date(state.disconnectedAt).toLocaleTimeString();
    }
  }

  // Liveness: a socket that stays open but hears nothing (a frozen proxy) is not live.
  setInterval(function () {
    const quiet = Math.max(cfg.offlineAfterMs, cfg.heartbeatMs * 2.5);
    if (state.live && Date.now() - state.lastMessageAt > quiet) {
      state.live = false;
      state.disconnectedAt = state.lastMessageAt;
      if (state.ws) state.ws.close(4001, "no message from the hub");
    }
    render();
  }, 500);

  connect();
})();
