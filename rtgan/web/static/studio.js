/* rtgan studio. The label map lives here as ids in a typed array; colours exist only on screen.
   Frames go to the server as raw ids over one WebSocket (rtgan/web/protocol.py), one request in
   flight: while a painting is on its way, drawing only marks the map dirty, and the newest state
   is sent when the answer arrives, so nothing queues and the painting follows the brush.
   A local-noise map (OASIS) is a second id array beside the labels, sent as RGN1 before the next
   IDS1; a model without labels (StyleGAN) is painted by GEN1 frames, a latent walk's step in each. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const FRAME_HEADER = 16, PAINT_HEADER = 24;
  const PICTURE_TYPES = { 1: "image/jpeg", 2: "image/png" };
  const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const UNDO_DEPTH = 50, JPEG_QUALITY = 0.9;
  const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];

  const state = {
    models: new Map(), // name -> /v1/models entry
    model: null, // the entry of the model this connection paints with
    w: 0, h: 0,
    ids: null, // Uint8Array or Uint16Array (bytes_per_id), row-major: the label map
    lut: null, // Uint32Array: id -> packed RGBA, for the canvas's Uint32 view
    brush: 0, tool: "brush", size: 16,
    undo: [], redo: [],
    drawing: false, last: null,
    ws: null, ready: false, switching: false,
    seq: 0, inFlight: 0, dirty: false,
    sentAt: new Map(),
    stash: null, // {ids, w, h}: the label map kept while an image-to-image model is on
    source: null, // image models: "picture" | "webcam" | null
    stream: null,
    seed: null,
    regions: null, // Uint8Array / Uint16Array: the local-noise region ids (models with noise_regions), 0 = none
    regionsDirty: false, nextRegion: 1, strokeRegion: 0,
    walk: null, // {from, to, t}: the latent walk's position (models without labels), kept while paused
    walking: false, walkSpeed: 0.3, walkClock: 0,
  };
  const stats = { sent: 0, painted: 0, errors: 0, skipped: 0, lastSent: 0, lastAnswered: 0, lastPainted: 0,
                  shown: [], samples: [], waiters: [] };

  const labelsCanvas = $("labels"), sourceCanvas = $("source"), paintingCanvas = $("painting");
  const labelsCtx = labelsCanvas.getContext("2d");
  const paintingCtx = paintingCanvas.getContext("2d");
  const sourceCtx = sourceCanvas.getContext("2d", { willReadFrequently: false });
  let labelsImage = null, renderQueued = false, messageTimer = 0;

  // ---- connection --------------------------------------------------------------------------------
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => (typeof e.data === "string" ? onJson(JSON.parse(e.data)) : onPainting(e.data));
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ready = false;
      state.inFlight = 0;
      setStatus("offline", "disconnected, retrying…");
      setTimeout(connect, 1000);
    };
    state.ws = ws;
  }

  function send(data) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(data);
  }

  function onJson(m) {
    switch (m.type) {
      case "ready": {
        state.ready = true;
        setStatus("live", "live");
        const want = state.model ? state.model.name : m.model;
        if (want !== m.model && state.models.has(want)) requestModel(want);
        else { adoptModel(state.models.get(m.model)); showStyle(m); }
        break;
      }
      case "model":
        state.switching = false;
        adoptModel(state.models.get(m.model));
        showStyle(m);
        break;
      case "style":
        showStyle(m);
        markDirty();
        break;
      case "noise":
        $("noise-info").textContent = `Noise region ${m.region}: seed ${m.seed}`;
        break;
      case "scalar":
      case "regions":
        break;
      case "skipped":
        stats.skipped++;
        answered(m.seq, null);
        break;
      case "error":
        stats.errors++;
        showMessage(m.message);
        if (state.switching && m.seq === null) { state.switching = false; $("model").value = state.model.name; }
        answered(m.seq, null);
        break;
    }
  }

  function answered(seq, sample) {
    if (seq === null || seq === undefined) return;
    stats.lastAnswered = Math.max(stats.lastAnswered, seq);
    if (seq === state.inFlight) state.inFlight = 0;
    stats.waiters = stats.waiters.filter((w) => (w.after < seq ? (w.resolve(sample), false) : true));
    pump();
  }

  // ---- frames out -------------------------------------------------------------------------------
  function frame(kind, seq, h, w, bpi, payloadBytes) {
    const buf = new ArrayBuffer(FRAME_HEADER + payloadBytes);
    const dv = new DataView(buf);
    for (let i = 0; i < 4; i++) dv.setUint8(i, kind.charCodeAt(i));
    dv.setUint32(4, seq, true);
    dv.setUint16(8, h, true);
    dv.setUint16(10, w, true);
    dv.setUint8(12, bpi);
    return buf;
  }

  function idsFrame(seq) {
    return idsLike("IDS1", seq, state.ids, state.model.bytes_per_id);
  }

  function idsLike(kind, seq, ids, bpi) {
    const n = state.w * state.h;
    const buf = frame(kind, seq, state.h, state.w, bpi, n * bpi);
    if (bpi === 1 && ids.BYTES_PER_ELEMENT === 1) new Uint8Array(buf, FRAME_HEADER).set(ids.subarray(0, n));
    else if (bpi === 2 && ids.BYTES_PER_ELEMENT === 2 && LITTLE) new Uint8Array(buf, FRAME_HEADER).set(new Uint8Array(ids.buffer, 0, n * 2));
    else { const dv = new DataView(buf); for (let i = 0; i < n; i++) bpi === 1 ? dv.setUint8(FRAME_HEADER + i, ids[i]) : dv.setUint16(FRAME_HEADER + 2 * i, ids[i], true); }
    return buf;
  }

  // GEN1: paint a model without labels; with a walk, its step (seed from, seed to: uint64; t: float32)
  function generateFrame(seq) {
    if (!state.walk) return frame("GEN1", seq, 0, 0, 0, 0);
    const buf = frame("GEN1", seq, 0, 0, 0, 20), dv = new DataView(buf);
    dv.setBigUint64(FRAME_HEADER, BigInt(state.walk.from), true);
    dv.setBigUint64(FRAME_HEADER + 8, BigInt(state.walk.to), true);
    dv.setFloat32(FRAME_HEADER + 16, state.walk.t, true);
    return buf;
  }

  async function pictureFrame(kind, seq, blob) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const buf = frame(kind, seq, 0, 0, 0, bytes.length);
    new Uint8Array(buf, FRAME_HEADER).set(bytes);
    return buf;
  }

  // One request in flight: send the newest state when nothing is on its way, else wait for the answer.
  async function pump() {
    if (!state.ready || state.switching || state.inFlight || !state.model) return;
    let seq = state.seq + 1;
    if (state.model.input === "labels") {
      if (!state.dirty || !state.ids) return;
      state.dirty = false;
      if (state.regionsDirty && state.regions) { // the region map first: the frame after it paints with it
        state.regionsDirty = false;
        send(idsLike("RGN1", seq, state.regions, state.model.noise_regions > 256 ? 2 : 1));
        seq += 1;
      }
      state.seq = seq;
      launch(seq, idsFrame(seq));
      return;
    }
    if (state.model.input === "latent") {
      if (!state.dirty) return;
      state.dirty = false;
      state.seq = seq;
      launch(seq, generateFrame(seq));
      return;
    }
    if (!state.source) { state.dirty = false; return; } // nothing to translate yet
    if (!state.dirty && state.source !== "webcam") return;
    if (state.source === "webcam" && $("video").readyState < 2) { requestAnimationFrame(pump); return; }
    state.dirty = false;
    state.seq = seq;
    state.inFlight = seq; // held across the asynchronous JPEG encoding
    if (state.source === "webcam") drawCover($("video"), sourceCanvas);
    const blob = await new Promise((r) => sourceCanvas.toBlob(r, "image/jpeg", JPEG_QUALITY));
    if (!blob || state.inFlight !== seq) { if (state.inFlight === seq) state.inFlight = 0; return; }
    launch(seq, await pictureFrame("IMG1", seq, blob));
  }

  function launch(seq, buf) {
    state.inFlight = seq;
    state.sentAt.set(seq, performance.now());
    stats.sent++;
    stats.lastSent = seq;
    send(buf);
  }

  function markDirty() {
    state.dirty = true;
    pump();
  }

  // ---- paintings in -------------------------------------------------------------------------------
  function onPainting(buf) {
    const dv = new DataView(buf);
    const seq = dv.getUint32(4, true), h = dv.getUint16(8, true), w = dv.getUint16(10, true);
    const encoding = dv.getUint8(12), engineMs = dv.getFloat32(16, true), serverMs = dv.getFloat32(20, true);
    if (paintingCanvas.width !== w || paintingCanvas.height !== h) { paintingCanvas.width = w; paintingCanvas.height = h; }
    if (encoding === 0) {
      paintingCtx.putImageData(new ImageData(new Uint8ClampedArray(buf, PAINT_HEADER, w * h * 4), w, h), 0, 0);
      painted(seq, engineMs, serverMs);
      return;
    }
    const blob = new Blob([new Uint8Array(buf, PAINT_HEADER)], { type: PICTURE_TYPES[encoding] });
    createImageBitmap(blob).then((bitmap) => {
      paintingCtx.drawImage(bitmap, 0, 0);
      bitmap.close();
      painted(seq, engineMs, serverMs);
    });
  }

  function painted(seq, engineMs, serverMs) {
    const now = performance.now();
    const sample = { seq, rtt: now - (state.sentAt.get(seq) ?? now), engine: engineMs, server: serverMs };
    state.sentAt.delete(seq);
    stats.painted++;
    stats.lastPainted = seq;
    stats.shown.push(now);
    stats.samples.push(sample);
    if (stats.samples.length > 5000) stats.samples.splice(0, 2500);
    $("painting-size").textContent = `${paintingCanvas.width}×${paintingCanvas.height}`;
    updateReadouts();
    answered(seq, sample);
  }

  function median(values) {
    if (!values.length) return NaN;
    const s = [...values].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  function updateReadouts() {
    const now = performance.now();
    while (stats.shown.length && stats.shown[0] < now - 1000) stats.shown.shift();
    $("fps").textContent = stats.shown.length ? String(stats.shown.length) : "–";
    const recent = stats.samples.slice(-15);
    const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : "–");
    $("rtt").textContent = fmt(median(recent.map((s) => s.rtt)));
    $("engine-ms").textContent = fmt(median(recent.map((s) => s.engine)));
  }

  // ---- models --------------------------------------------------------------------------------------
  function requestModel(name) {
    state.switching = true;
    send(JSON.stringify({ type: "model", name }));
  }

  // The canvas keeps its drawing where the classes allow: nearest-neighbour to the new size, and ids
  // the new model lacks become its first class.
  function resample(ids, ow, oh, model) {
    const w = model.width, h = model.height;
    const out = new (model.bytes_per_id === 2 ? Uint16Array : Uint8Array)(w * h);
    const allowed = new Uint8Array(65536);
    for (const c of model.classes) allowed[c.id] = 1;
    for (let y = 0; y < h; y++) {
      const sy = Math.floor((y * oh) / h);
      for (let x = 0; x < w; x++) {
        const v = ids ? ids[sy * ow + Math.floor((x * ow) / w)] : model.background;
        out[y * w + x] = allowed[v] ? v : model.background;
      }
    }
    return out;
  }

  function adoptModel(model) {
    if (!model) return;
    const wasImage = state.model && state.model.input === "image";
    if (!wasImage && state.ids) state.stash = { ids: state.ids, w: state.w, h: state.h };
    state.model = model;
    state.w = model.width;
    state.h = model.height;
    state.undo = [];
    state.redo = [];
    $("model").value = model.name;
    $("model-info").textContent = `${model.name}: ${model.width}×${model.height}, ${model.backend} ${model.precision}`;
    const image = model.input === "image", latent = model.input === "latent";
    $("label-tools").hidden = image || latent;
    $("image-tools").hidden = !image;
    $("latent-tools").hidden = !latent;
    $("canvas-view").hidden = latent; // no label map: the painting alone
    $("stage").classList.toggle("single", latent);
    labelsCanvas.hidden = image;
    sourceCanvas.hidden = !image;
    $("canvas-caption").textContent = image ? "Source picture" : "Label map";
    const noise = Boolean(model.noise_regions && model.noise_regions > 1) && !image && !latent;
    $("noise-tool").hidden = !noise;
    $("noise-row").hidden = !noise;
    $("noise-info").textContent = noise ? "Noise brush (X): each stroke gives the area under it a new noise; Clear noise undoes them all." : "";
    if (!noise && state.tool === "noise") setTool("brush");
    state.regions = noise ? new (model.noise_regions > 256 ? Uint16Array : Uint8Array)(model.width * model.height) : null;
    state.regionsDirty = false;
    state.nextRegion = 1;
    stopWalk();
    state.walk = null;
    buildScalars(model);
    $("region-style").hidden = !model.region_styles;
    if (latent) {
      state.ids = null;
    } else if (image) {
      state.ids = null;
      if (sourceCanvas.width !== model.width || sourceCanvas.height !== model.height) {
        sourceCanvas.width = model.width;
        sourceCanvas.height = model.height;
        if (state.source === "picture") state.source = null; // redrawn on the next upload
      }
      if (!state.source) drawPlaceholder();
    } else {
      const from = state.stash;
      state.ids = resample(from && from.ids, from ? from.w : 1, from ? from.h : 1, model);
      state.stash = null;
      buildPalette(model);
      buildStyleClasses(model);
      labelsCanvas.width = model.width;
      labelsCanvas.height = model.height;
      labelsImage = labelsCtx.createImageData(model.width, model.height);
      render();
    }
    markDirty();
  }

  function buildPalette(model) {
    let maxId = 0;
    for (const c of model.classes) maxId = Math.max(maxId, c.id);
    state.lut = new Uint32Array(maxId + 1);
    const box = $("classes");
    box.textContent = "";
    model.classes.forEach((c, i) => {
      const [r, g, b] = c.color;
      state.lut[c.id] = LITTLE ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
      const button = document.createElement("button");
      button.dataset.id = String(c.id);
      button.title = `${c.name} (id ${c.id})${i < 9 ? `, key ${i + 1}` : ""}`;
      button.setAttribute("role", "radio");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = `rgb(${r},${g},${b})`;
      button.append(swatch, document.createTextNode(c.name));
      button.addEventListener("click", () => selectClass(c.id));
      box.append(button);
    });
    const keep = model.classes.some((c) => c.id === state.brush);
    const second = model.classes[Math.min(1, model.classes.length - 1)];
    selectClass(keep ? state.brush : second.id);
  }

  function selectClass(id) {
    state.brush = id;
    if (state.tool === "eraser" || state.tool === "noise") setTool("brush");
    for (const b of $("classes").children) {
      const on = Number(b.dataset.id) === id;
      b.classList.toggle("active", on);
      b.setAttribute("aria-checked", String(on));
    }
  }

  function setTool(tool) {
    state.tool = tool;
    for (const b of $("tool").children) b.classList.toggle("active", b.dataset.tool === tool);
    labelsCanvas.style.cursor = tool === "fill" ? "crosshair" : "none";
  }

  function setSize(size) {
    state.size = Math.max(1, Math.min(96, Math.round(size)));
    $("size").value = String(state.size);
    $("size-value").textContent = String(state.size);
  }

  // ---- drawing ------------------------------------------------------------------------------------
  function render() {
    renderQueued = false;
    if (!state.ids || !labelsImage) return;
    const px = new Uint32Array(labelsImage.data.buffer), ids = state.ids, lut = state.lut;
    for (let i = 0; i < ids.length; i++) px[i] = lut[ids[i]];
    const regions = state.regions;
    if (regions) { // local noise shows as a dark hatch over its class colour
      const w = state.w, dark = LITTLE ? 0xff000000 : 0x000000ff;
      for (let i = 0; i < regions.length; i++) {
        if (regions[i] && (((i % w) + Math.floor(i / w)) & 3) === 0) px[i] = dark;
      }
    }
    labelsCtx.putImageData(labelsImage, 0, 0);
  }

  function changed() {
    if (!renderQueued) { renderQueued = true; requestAnimationFrame(render); }
    markDirty();
  }

  // page coordinates -> label-map coordinates, pixel centres at integers
  function toPixel(e) {
    const r = labelsCanvas.getBoundingClientRect();
    return [((e.clientX - r.left) * state.w) / r.width - 0.5, ((e.clientY - r.top) * state.h) / r.height - 0.5];
  }

  function paintId() {
    return state.tool === "eraser" ? state.model.background : state.brush;
  }

  // a round brush swept from (x0, y0) to (x1, y1): every pixel within size/2 of the segment
  function stroke(x0, y0, x1, y1, id, ids = state.ids) {
    const { w, h } = state, r = state.size / 2, r2 = r * r;
    const dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    const xa = Math.max(0, Math.floor(Math.min(x0, x1) - r)), xb = Math.min(w - 1, Math.ceil(Math.max(x0, x1) + r));
    const ya = Math.max(0, Math.floor(Math.min(y0, y1) - r)), yb = Math.min(h - 1, Math.ceil(Math.max(y0, y1) + r));
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        let t = len2 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = x - x0 - t * dx, ey = y - y0 - t * dy;
        if (ex * ex + ey * ey <= r2) ids[y * w + x] = id;
      }
    }
  }

  // 4-connected scanline flood fill of the region under (x, y); false when it already has `id`
  function fill(x, y, id) {
    const { w, h, ids } = state, target = ids[y * w + x];
    if (target === id) return false;
    const stack = [x, y];
    while (stack.length) {
      const cy = stack.pop();
      let cx = stack.pop(), i = cy * w + cx;
      while (cx > 0 && ids[i - 1] === target) { cx--; i--; }
      let up = false, down = false;
      for (; cx < w && ids[i] === target; cx++, i++) {
        ids[i] = id;
        if (cy > 0) {
          if (ids[i - w] === target) { if (!up) { stack.push(cx, cy - 1); up = true; } } else up = false;
        }
        if (cy < h - 1) {
          if (ids[i + w] === target) { if (!down) { stack.push(cx, cy + 1); down = true; } } else down = false;
        }
      }
    }
    return true;
  }

  function pushUndo() {
    state.undo.push(state.ids.slice());
    if (state.undo.length > UNDO_DEPTH) state.undo.shift();
    state.redo = [];
  }

  function undo() {
    if (!state.ids || !state.undo.length) return;
    state.redo.push(state.ids);
    state.ids = state.undo.pop();
    changed();
  }

  function redo() {
    if (!state.ids || !state.redo.length) return;
    state.undo.push(state.ids);
    state.ids = state.redo.pop();
    changed();
  }

  function clearCanvas() {
    if (!state.ids) return;
    pushUndo();
    state.ids.fill(state.model.background);
    changed();
  }

  labelsCanvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !state.ids) return;
    labelsCanvas.setPointerCapture(e.pointerId);
    const [x, y] = toPixel(e);
    if (state.tool === "noise") {
      if (!state.regions) return;
      noiseStroke(); // a new region id, with a fresh z for it (sent before the map that uses it)
      state.drawing = true;
      state.last = [x, y];
      stroke(x, y, x, y, state.strokeRegion, state.regions);
      state.regionsDirty = true;
      changed();
      return;
    }
    pushUndo();
    if (state.tool === "fill") {
      const cx = Math.min(state.w - 1, Math.max(0, Math.round(x))), cy = Math.min(state.h - 1, Math.max(0, Math.round(y)));
      if (!fill(cx, cy, state.brush)) { state.undo.pop(); return; }
    } else {
      state.drawing = true;
      state.last = [x, y];
      stroke(x, y, x, y, paintId());
    }
    changed();
  });

  labelsCanvas.addEventListener("pointermove", (e) => {
    moveCursor(e);
    if (!state.drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    const noise = state.tool === "noise" && state.regions;
    for (const ev of events.length ? events : [e]) {
      const [x, y] = toPixel(ev);
      if (noise) stroke(state.last[0], state.last[1], x, y, state.strokeRegion, state.regions);
      else stroke(state.last[0], state.last[1], x, y, paintId());
      state.last = [x, y];
    }
    if (noise) state.regionsDirty = true;
    changed();
  });

  const endStroke = () => { state.drawing = false; state.last = null; };
  labelsCanvas.addEventListener("pointerup", endStroke);
  labelsCanvas.addEventListener("pointercancel", endStroke);
  labelsCanvas.addEventListener("pointerleave", () => { $("cursor").hidden = true; });

  function moveCursor(e) {
    const cursor = $("cursor");
    if (state.tool === "fill") { cursor.hidden = true; return; }
    const r = labelsCanvas.getBoundingClientRect(), frameRect = $("canvas-frame").getBoundingClientRect();
    const d = (state.size * r.width) / state.w;
    cursor.hidden = false;
    cursor.style.width = cursor.style.height = `${d}px`;
    cursor.style.left = `${e.clientX - frameRect.left}px`;
    cursor.style.top = `${e.clientY - frameRect.top}px`;
  }

  // ---- label PNGs ------------------------------------------------------------------------------------
  async function loadLabels(file) {
    const response = await fetch(`/v1/labels?model=${encodeURIComponent(state.model.name)}`, {
      method: "POST", body: file, headers: { "Content-Type": "image/png" },
    });
    if (!response.ok) { showMessage(await errorText(response)); return; }
    const buf = await response.arrayBuffer(), bpi = Number(response.headers.get("X-Bytes-Per-Id"));
    let ids = bpi === 2 ? new Uint16Array(buf) : new Uint8Array(buf);
    if (bpi === 2 && !LITTLE) { const dv = new DataView(buf); ids = ids.map((_, i) => dv.getUint16(2 * i, true)); }
    if (ids.length !== state.w * state.h) { showMessage("the server sent a label map of another size"); return; }
    pushUndo();
    state.ids = ids;
    changed();
  }

  async function errorText(response) {
    try { const body = await response.json(); return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); }
    catch { return `${response.status} ${response.statusText}`; }
  }

  const CRC = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
    return t;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC[(c ^ bytes[i]) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function chunk(type, data) {
    const out = new Uint8Array(12 + data.length), dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  }

  async function zlib(raw) {
    if (window.CompressionStream) {
      const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate")); // zlib-wrapped
      return new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const blocks = Math.max(1, Math.ceil(raw.length / 65535)); // stored (uncompressed) deflate blocks
    const out = new Uint8Array(2 + raw.length + 5 * blocks + 4);
    out[0] = 0x78; out[1] = 0x01;
    let o = 2, a = 1, b = 0;
    for (let k = 0; k < blocks; k++) {
      const part = raw.subarray(k * 65535, (k + 1) * 65535), n = part.length;
      out.set([k === blocks - 1 ? 1 : 0, n & 255, n >> 8, ~n & 255, (~n >> 8) & 255], o);
      out.set(part, o + 5);
      o += 5 + n;
    }
    for (let i = 0; i < raw.length; i++) { a = (a + raw[i]) % 65521; b = (b + a) % 65521; }
    new DataView(out.buffer).setUint32(o, ((b << 16) | a) >>> 0);
    return out;
  }

  // the ids as a grayscale PNG: 8-bit, or 16-bit (big-endian samples, as PNG stores them) above id 255
  async function labelPng(ids, w, h, bpi) {
    const row = 1 + w * bpi, raw = new Uint8Array(row * h); // each row: filter type 0, then the samples
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = ids[y * w + x], o = y * row + 1 + x * bpi;
        if (bpi === 1) raw[o] = v; else { raw[o] = v >> 8; raw[o + 1] = v & 255; }
      }
    }
    const ihdr = new Uint8Array(13), dv = new DataView(ihdr.buffer);
    dv.setUint32(0, w); dv.setUint32(4, h); ihdr[8] = 8 * bpi; // colour type 0 (grey), no interlace
    const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
    const parts = [signature, chunk("IHDR", ihdr), chunk("IDAT", await zlib(raw)), chunk("IEND", new Uint8Array(0))];
    return new Blob(parts, { type: "image/png" });
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // ---- pictures (image-to-image models) and style ------------------------------------------------------
  function drawCover(src, canvas) {
    const sw = src.videoWidth || src.width, sh = src.videoHeight || src.height;
    const scale = Math.max(canvas.width / sw, canvas.height / sh);
    const cw = canvas.width / scale, ch = canvas.height / scale;
    canvas.getContext("2d").drawImage(src, (sw - cw) / 2, (sh - ch) / 2, cw, ch, 0, 0, canvas.width, canvas.height);
  }

  function drawPlaceholder() {
    sourceCtx.fillStyle = "#0c0d10";
    sourceCtx.fillRect(0, 0, sourceCanvas.width, sourceCanvas.height);
    sourceCtx.fillStyle = "#9aa1b2";
    sourceCtx.font = `${Math.max(10, sourceCanvas.width / 22)}px system-ui, sans-serif`;
    sourceCtx.textAlign = "center";
    sourceCtx.fillText("upload a picture or start the webcam", sourceCanvas.width / 2, sourceCanvas.height / 2);
  }

  async function usePicture(file) {
    try {
      const bitmap = await createImageBitmap(file);
      stopWebcam();
      drawCover(bitmap, sourceCanvas);
      bitmap.close();
      state.source = "picture";
      markDirty();
    } catch {
      showMessage(`${file.name}: not a picture this browser can read`);
    }
  }

  async function toggleWebcam() {
    if (state.stream) { stopWebcam(); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showMessage("the webcam needs a secure page: open the studio on localhost or over https");
      return;
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (e) {
      showMessage(`no webcam: ${e.message || e.name}`);
      return;
    }
    const video = $("video");
    video.srcObject = state.stream;
    await video.play();
    state.source = "webcam";
    $("webcam").textContent = "Stop webcam";
    pump();
  }

  function stopWebcam() {
    if (!state.stream) return;
    for (const track of state.stream.getTracks()) track.stop();
    state.stream = null;
    $("video").srcObject = null;
    $("webcam").textContent = "Start webcam";
    if (state.source === "webcam") state.source = "picture"; // the last frame stays on the canvas
  }

  async function styleFromPicture(file) {
    state.seq += 1;
    send(await pictureFrame("STY1", state.seq, file));
  }

  function showStyle(m) {
    const model = state.model;
    const has = Boolean(model && model.style);
    const what = !model ? "style" : model.arch === "oasis" ? "noise" : model.input === "latent" ? "z" : "style";
    $("random-style").disabled = !has;
    $("random-style").textContent = what === "noise" ? "New noise (N)" : what === "z" ? "New random z (N)" : "New random style (N)";
    $("style-image").disabled = !(model && model.style_image);
    $("style-image").textContent = model && model.region_styles ? "Style the whole painting…" : "Style from a picture…";
    if (!has) { $("style-info").textContent = `${model ? model.name : "this model"} paints one style: it has no style input.`; return; }
    if (m.source === "image") {
      const c = m.class !== undefined && model.classes.find((k) => k.id === m.class);
      $("style-info").textContent = c ? `${c.name}: style from your picture.` : "Style from your picture.";
    } else if (m.seed !== null && m.seed !== undefined) {
      state.seed = m.seed;
      $("style-info").textContent = `${what === "noise" ? "Noise" : what === "z" ? "Seed" : "Style"} seed ${m.seed}`.replace("Seed seed", "Seed");
      $("style-info").title = `POST /v1/paint?model=${model.name}&seed=${m.seed} paints this ${what} again`;
    }
  }

  // ---- local noise (OASIS), latent walk and scalars (StyleGAN), per-class styles (SEAN) ------------------
  // each stroke takes the next region id, cycling 1..M-1, and a freshly drawn z for it
  function noiseStroke() {
    const m = state.model.noise_regions, region = state.nextRegion;
    state.nextRegion = (region % (m - 1)) + 1;
    state.strokeRegion = region;
    send(JSON.stringify({ type: "noise", region, seed: null }));
    return region;
  }

  function clearNoise() {
    if (!state.regions) return;
    state.regions.fill(0);
    state.nextRegion = 1;
    state.regionsDirty = true;
    changed();
  }

  function startWalk() {
    if (!state.model || state.model.input !== "latent") return;
    if (!state.walk) state.walk = { from: state.seed ?? randomSeed(), to: randomSeed(), t: 0 };
    state.walking = true;
    state.walkClock = performance.now();
    $("walk").textContent = "Pause walk";
    $("walk").classList.add("active");
    requestAnimationFrame(walkTick);
  }

  function stopWalk() {
    state.walking = false;
    $("walk").textContent = "Start walk";
    $("walk").classList.remove("active");
  }

  function walkTick(now) {
    if (!state.walking || !state.walk) return;
    const dt = Math.min(0.25, Math.max(0, (now - state.walkClock) / 1000));
    state.walkClock = now;
    const w = state.walk;
    w.t += dt * state.walkSpeed;
    while (w.t >= 1) { w.t -= 1; w.from = w.to; w.to = randomSeed(); } // on to the next random z
    showWalk();
    markDirty(); // sent when the painting on its way is back: the walk runs at the engine's pace
    requestAnimationFrame(walkTick);
  }

  function showWalk() {
    const w = state.walk;
    if (w) $("style-info").textContent = `Walk: seed ${w.from} → ${w.to}, t = ${w.t.toFixed(2)}`;
  }

  function buildScalars(model) {
    const box = $("scalars");
    box.textContent = "";
    for (const sc of model.scalars || []) {
      const low = sc.low ?? Math.min(0, sc.default), high = sc.high ?? Math.max(1, sc.default * 2);
      const label = document.createElement("label");
      label.className = "slider";
      const out = document.createElement("output");
      out.textContent = sc.default.toFixed(2);
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: String(low), max: String(high), step: String((high - low) / 100), value: String(sc.default) });
      input.dataset.scalar = sc.name;
      input.title = sc.name === "truncation" ? "ψ: 1 paints the full variety, lower values pull towards the average image" : sc.name;
      input.addEventListener("input", () => {
        const value = Number(input.value);
        out.textContent = value.toFixed(2);
        send(JSON.stringify({ type: "scalar", name: sc.name, value }));
        markDirty();
      });
      label.append(document.createTextNode(sc.name === "truncation" ? "Truncation ψ " : `${sc.name} `), out, input);
      box.append(label);
    }
  }

  function buildStyleClasses(model) {
    const select = $("style-class");
    select.textContent = "";
    if (!model.region_styles) return;
    for (const c of model.classes) {
      const option = document.createElement("option");
      option.value = String(c.id);
      option.textContent = c.name;
      select.append(option);
    }
    select.value = String(state.brush);
  }

  async function styleClassFromPicture(file) {
    state.seq += 1;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const buf = frame("STR1", state.seq, Number($("style-class").value), 0, 0, bytes.length); // the class in the height field
    new Uint8Array(buf, FRAME_HEADER).set(bytes);
    send(buf);
  }

  function newStyle() {
    if (!state.model || !state.model.style) return;
    state.walk = null; // a new z ends the walk where it was
    stopWalk();
    send(JSON.stringify({ type: "style", seed: null }));
  }

  // ---- page chrome ------------------------------------------------------------------------------------
  function setStatus(kind, text) {
    const s = $("status");
    s.dataset.state = kind;
    s.textContent = text;
  }

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function pickFile(input, use) {
    input.addEventListener("change", () => { if (input.files[0]) use(input.files[0]); input.value = ""; });
    return () => input.click();
  }

  function wire() {
    $("model").addEventListener("change", (e) => requestModel(e.target.value));
    for (const b of $("tool").children) b.addEventListener("click", () => setTool(b.dataset.tool));
    $("size").addEventListener("input", (e) => setSize(Number(e.target.value)));
    $("undo").addEventListener("click", undo);
    $("redo").addEventListener("click", redo);
    $("clear").addEventListener("click", clearCanvas);
    $("load").addEventListener("click", pickFile($("load-file"), loadLabels));
    $("save").addEventListener("click", async () => {
      if (state.ids) download(await labelPng(state.ids, state.w, state.h, state.model.bytes_per_id), `labels-${state.model.name}.png`);
    });
    $("upload").addEventListener("click", pickFile($("upload-file"), usePicture));
    $("webcam").addEventListener("click", toggleWebcam);
    $("random-style").addEventListener("click", newStyle);
    $("style-image").addEventListener("click", pickFile($("style-file"), styleFromPicture));
    $("style-class-image").addEventListener("click", pickFile($("style-class-file"), styleClassFromPicture));
    $("clear-noise").addEventListener("click", clearNoise);
    $("walk").addEventListener("click", () => (state.walking ? stopWalk() : startWalk()));
    $("walk-speed").addEventListener("input", (e) => {
      state.walkSpeed = Number(e.target.value);
      $("walk-speed-value").textContent = state.walkSpeed.toFixed(2);
    });
    $("download").addEventListener("click", () => {
      const tag = state.model && state.model.style && state.seed !== null ? `-seed${state.seed}` : "";
      paintingCanvas.toBlob((blob) => download(blob, `painting-${state.model ? state.model.name : "rtgan"}${tag}.png`), "image/png");
    });
    document.addEventListener("keydown", (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      const key = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
      else if ((e.ctrlKey || e.metaKey) && key === "y") { e.preventDefault(); redo(); }
      else if (e.ctrlKey || e.metaKey || e.altKey) return;
      else if (key === "b") setTool("brush");
      else if (key === "f") setTool("fill");
      else if (key === "e") setTool("eraser");
      else if (key === "x" && state.regions) setTool("noise");
      else if (key === "n") newStyle();
      else if (key === "w" && state.model && state.model.input === "latent") (state.walking ? stopWalk() : startWalk());
      else if (key === "[") setSize(state.size - 2);
      else if (key === "]") setSize(state.size + 2);
      else if (/^[1-9]$/.test(key) && state.model && state.model.classes[Number(key) - 1]) selectClass(state.model.classes[Number(key) - 1].id);
    });
    setInterval(updateReadouts, 500);
  }

  async function start() {
    wire();
    setSize(state.size);
    const response = await fetch("/v1/models");
    const models = await response.json();
    const select = $("model");
    for (const m of models) {
      state.models.set(m.name, m);
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} (${{ image: "picture", latent: "no labels" }[m.input] || "labels"}, ${m.width}×${m.height})`;
      select.append(option);
    }
    connect();
  }

  // for tests, benchmarks and the console
  window.studio = {
    state, stats,
    idle: () => state.ready && !state.switching && !state.inFlight && !state.dirty,
    // a promise of the answer to the next frame sent with the current state (a sample, or null)
    paint: () => {
      const after = state.seq;
      const done = new Promise((resolve) => stats.waiters.push({ after, resolve }));
      markDirty();
      return done;
    },
    selectClass, setTool, setSize, undo, redo, labelPng, clearNoise, startWalk, stopWalk,
    encoding: (value) => send(JSON.stringify({ type: "encoding", value })),
    style: (seed) => send(JSON.stringify({ type: "style", seed })),
  };
  start().catch((e) => { setStatus("offline", "cannot reach the server"); showMessage(String(e)); });
})();
