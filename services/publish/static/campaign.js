/*
 * votestream publication page: ranking, live updates, the sealed final.
 * Plain ES2017, no libraries: the charts are SVG drawn here, so the page needs no network
 * beyond the results API (or ./latest.json when published as a static file).
 */
(function () {
  'use strict';

  var POLL_MS = 5000;
  var TIMESERIES_MIN_GAP_MS = 5000;
  var MINUTES_SHOWN = 60;
  var CHANNELS = [
    { key: 'web', name: '网站' },
    { key: 'wechat', name: '微信公众号' },
    { key: 'kiosk', name: '自助终端' }
  ];
  var REASONS = {
    limit_exceeded: '超出投票次数限制',
    campaign_closed: '投票截止后提交',
    campaign_not_open: '投票开始前提交',
    invalid_selection: '选择不符合规则',
    too_many_selections: '选择项目超过上限',
    too_few_selections: '选择项目不足',
    unknown_candidate: '包含不在名单中的项目',
    duplicate_selection: '包含重复项目',
    unauthorized: '身份验证未通过'
  };
  // The HTML parser knows the SVG namespace, so this file needs no URL literal at all.
  var SVG_NS = (function () {
    var holder = document.createElement('div');
    holder.innerHTML = '<svg></svg>';
    return holder.firstChild.namespaceURI;
  }());

  var state = {
    mode: 'api',
    campaignId: null,
    campaign: null,
    snapshot: null,
    series: null,
    source: null,      // EventSource while streaming
    pollTimer: 0,
    seriesFetchedAt: 0
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function fmt(n) { return Number(n || 0).toLocaleString('zh-CN'); }

  function timeZone() { return (state.campaign && state.campaign.timezone) || undefined; }

  function formatTime(iso, withDate) {
    var d = new Date(iso);
    if (!iso || isNaN(d.getTime())) { return '—'; }
    var opts = { hour: '2-digit', minute: '2-digit', second: withDate ? '2-digit' : undefined, hour12: false };
    if (withDate) { opts.year = 'numeric'; opts.month = '2-digit'; opts.day = '2-digit'; }
    try { return d.toLocaleString('zh-CN', Object.assign({ timeZone: timeZone() }, opts)); }
    catch (e) { return d.toLocaleString('zh-CN', opts); }
  }

  // ---- where the data comes from ---------------------------------------------------

  // "static" when the publisher wrote this page next to latest.json (meta tag) or when it
  // is opened from disk; otherwise the publish service serves it beside its API.
  function detectMode() {
    var meta = document.querySelector('meta[name="votestream-mode"]');
    var declared = meta ? meta.getAttribute('content') : 'api';
    return window.location.protocol === 'file:' || declared === 'static' ? 'static' : 'api';
  }

  function embedded() {
    try { return JSON.parse($('votestream-data').textContent || 'null') || {}; }
    catch (e) { return {}; }
  }

  function campaignIdFromPath(pathname) {
    var m = /\/campaigns\/([^\/]+)\/?$/.exec(pathname);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function apiPath(suffix) {
    return '/v1/campaigns/' + encodeURIComponent(state.campaignId) + suffix;
  }

  async function getJSON(url) {
    var res = await fetch(url, { cache: 'no-store', headers: { 'Accept': 'application/json' } });
    if (res.status === 404) { return null; }
    if (!res.ok) { throw new Error('HTTP ' + res.status); }
    return res.json();
  }

  function resultsUrl() { return state.mode === 'static' ? 'latest.json' : apiPath('/results'); }

  async function refreshResults() {
    try {
      var snap = await getJSON(resultsUrl());
      if (snap) { applySnapshot(snap); }
      else if (!state.snapshot) { showNoResults(); }
    } catch (e) {
      if (!state.snapshot) { setStatus('error', '暂时无法获取结果，正在重试…'); }
    }
  }

  async function refreshSeries(force) {
    var now = Date.now();
    if (!force && now - state.seriesFetchedAt < TIMESERIES_MIN_GAP_MS) { return; }
    state.seriesFetchedAt = now;
    var url = state.mode === 'static' ? 'timeseries.json' : apiPath('/timeseries');
    try {
      var data = await getJSON(url);
      // The publisher may not write timeseries.json next to a static page: hide the chart then.
      $('minutes').hidden = !data && state.mode === 'static';
      state.series = data ? data.series || [] : [];
    } catch (e) {
      return; // keep the last chart; the next snapshot tries again
    }
    drawMinutes();
  }

  function startPolling() {
    if (state.pollTimer || isFinal()) { return; }
    state.pollTimer = setInterval(refreshResults, POLL_MS);
    if (state.snapshot && state.mode === 'api') { setStatus('polling', '每 5 秒自动刷新'); }
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = 0;
  }

  // Server-Sent Events while they work; polling whenever the stream is down.
  function connectStream() {
    if (!window.EventSource) { startPolling(); return; }
    var source = new EventSource(apiPath('/stream'));
    state.source = source;
    source.addEventListener('snapshot', function (event) {
      try { applySnapshot(JSON.parse(event.data)); } catch (e) { /* a bad event: wait for the next */ }
    });
    source.addEventListener('open', function () {
      stopPolling();
      if (state.snapshot && !isFinal()) { setStatus('live', '实时更新中'); }
      refreshResults(); // catch up on anything published while we were disconnected
    });
    source.addEventListener('error', function () {
      if (source.readyState === 2) { state.source = null; } // CLOSED: it will not reconnect
      startPolling();
    });
  }

  function stopLive() {
    stopPolling();
    if (state.source) { state.source.close(); state.source = null; }
  }

  function isFinal() { return !!(state.snapshot && state.snapshot.final); }

  // ---- rendering -------------------------------------------------------------------------

  function setStatus(kind, text) {
    var box = $('status');
    box.setAttribute('data-state', kind);
    box.className = 'status status--' + kind;
    $('status-text').textContent = text;
    $('status-link').hidden = kind !== 'final';
  }

  function showNoResults() {
    setStatus('empty', '暂无结果');
    $('empty').hidden = false;
    $('bars').textContent = '';
  }

  function renderCampaign(c) {
    if (!c) { return; }
    document.title = c.title + ' - 投票结果公示';
    $('title').textContent = c.title;
    $('organizer').textContent = c.organizer || '';
    $('question').textContent = c.question || '';
  }

  function applySnapshot(snap) {
    var cur = state.snapshot;
    if (!snap || !snap.candidates) { return; }
    if (cur && (cur.final || snap.seq < cur.seq)) { return; } // the final never changes; ignore stale polls
    var seqChanged = !cur || snap.seq !== cur.seq;
    state.snapshot = snap;
    if (!state.campaignId) { state.campaignId = snap.campaign_id; }
    $('empty').hidden = true;
    renderSummary(snap);
    renderBars(snap);
    renderReasons(snap);
    renderIntegrity(snap);
    if (snap.final) {
      stopLive();
      setStatus('final', '最终结果（已签名封存）');
    } else if (state.mode === 'static') {
      setStatus('static', state.pollTimer ? '静态发布页 · 每 5 秒刷新' : '静态快照');
    } else {
      setStatus(state.source && state.source.readyState === 1 ? 'live' : 'polling',
        state.source && state.source.readyState === 1 ? '实时更新中' : '每 5 秒自动刷新');
    }
    if (seqChanged) { refreshSeries(!!snap.final); }
  }

  function renderSummary(snap) {
    $('counted').textContent = fmt(snap.ballots_counted);
    var rejected = 0;
    Object.keys(snap.ballots_rejected || {}).forEach(function (k) { rejected += snap.ballots_rejected[k]; });
    $('rejected-total').textContent = fmt(rejected);
    var asOf = $('as-of');
    asOf.textContent = formatTime(snap.as_of, true);
    asOf.setAttribute('datetime', snap.as_of || '');
    $('seq').textContent = String(snap.seq);
  }

  function sortedCandidates(snap) {
    return snap.candidates.slice().sort(function (a, b) {
      return (a.rank - b.rank) || (b.votes - a.votes) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    });
  }

  function renderBars(snap) {
    var rows = sortedCandidates(snap);
    var top = snap.top || [];
    var topN = (state.campaign && state.campaign.top_n) || top.length;
    var max = rows.reduce(function (m, c) { return Math.max(m, c.votes || 0); }, 0) || 1;
    var lastTop = -1;
    rows.forEach(function (c, i) { if (top.indexOf(c.id) >= 0) { lastTop = i; } });
    // With a tie at the cutoff, every candidate sharing the rank at position N is flagged.
    var tiedRank = snap.tie_at_cutoff && rows[topN - 1] ? rows[topN - 1].rank : null;

    var list = $('bars');
    list.textContent = '';
    rows.forEach(function (c, i) {
      list.appendChild(barRow(c, max, top.indexOf(c.id) >= 0, c.rank === tiedRank));
      if (i === lastTop && i < rows.length - 1) { list.appendChild(cutoffRow(topN)); }
    });
    $('ranking-note').textContent = '共 ' + rows.length + ' 项候选，按得票数排序；前 ' + topN +
      ' 名入选。条形内按渠道分色。';
    var warn = $('tie-warning');
    warn.hidden = !snap.tie_at_cutoff;
    warn.textContent = snap.tie_at_cutoff
      ? '注意：第 ' + topN + ' 名处出现得票并列（标有“并列”），入选名单以主办单位按规则确认的结果为准。'
      : '';
  }

  function barRow(c, max, inTop, tied) {
    var li = el('li', 'bar-row' + (inTop ? ' is-top' : ''));
    li.setAttribute('data-candidate', c.id);
    li.setAttribute('data-votes', String(c.votes));
    li.setAttribute('data-rank', String(c.rank));
    var head = el('div', 'bar-head');
    head.appendChild(el('span', 'rank', String(c.rank)));
    var label = el('div', 'bar-label');
    label.appendChild(el('span', 'bar-title', c.title));
    label.appendChild(el('span', 'bar-unit', c.unit || ''));
    head.appendChild(label);
    var badges = el('span', 'badges');
    if (inTop) { badges.appendChild(el('span', 'badge badge--top', '入选')); }
    if (tied) { badges.appendChild(el('span', 'badge badge--tie', '并列')); }
    head.appendChild(badges);
    li.appendChild(head);

    var line = el('div', 'bar-line');
    line.appendChild(barSvg(c, max));
    line.appendChild(el('span', 'votes', fmt(c.votes) + ' 票'));
    li.appendChild(line);
    if (c.votes) {
      li.appendChild(el('p', 'split', channelSplit(c).map(function (s) {
        return s.name + ' ' + fmt(s.n);
      }).join(' · ')));
    }
    return li;
  }

  function channelSplit(c) {
    var by = c.by_channel || {};
    var parts = CHANNELS.map(function (ch) { return { key: ch.key, name: ch.name, n: by[ch.key] || 0 }; });
    var known = parts.reduce(function (s, p) { return s + p.n; }, 0);
    if ((c.votes || 0) > known) { parts.push({ key: 'other', name: '其他', n: c.votes - known }); }
    return parts;
  }

  // One bar: the track at full scale, then the channel segments stacked left to right.
  function barSvg(c, max) {
    var W = 1000;
    var H = 24;
    var s = svg('svg', { 'class': 'bar', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    s.appendChild(svg('rect', { 'class': 'bar-track', x: 0, y: 0, width: W, height: H }));
    var x = 0;
    channelSplit(c).forEach(function (p) {
      if (!p.n) { return; }
      var w = p.n / max * W;
      var seg = svg('rect', { 'class': 'seg seg--' + p.key, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: H });
      seg.setAttribute('data-channel', p.key);
      var tip = svg('title');
      tip.textContent = p.name + '：' + fmt(p.n) + ' 票';
      seg.appendChild(tip);
      s.appendChild(seg);
      x += w;
    });
    return s;
  }

  function cutoffRow(topN) {
    var li = el('li', 'cutoff');
    li.setAttribute('aria-hidden', 'true');
    var line = svg('svg', { 'class': 'cutoff-line', viewBox: '0 0 100 2', preserveAspectRatio: 'none' });
    line.appendChild(svg('line', { x1: 0, y1: 1, x2: 100, y2: 1 }));
    li.appendChild(line);
    li.appendChild(el('span', 'cutoff-label', '入选线 · 前 ' + topN + ' 名'));
    return li;
  }

  function renderReasons(snap) {
    var body = $('reasons');
    body.textContent = '';
    var add = function (label, n, cls) {
      var tr = el('tr', cls);
      tr.appendChild(el('td', '', label));
      tr.appendChild(el('td', 'num', fmt(n)));
      body.appendChild(tr);
    };
    var rejected = snap.ballots_rejected || {};
    var keys = Object.keys(rejected).sort(function (a, b) { return rejected[b] - rejected[a]; });
    keys.forEach(function (k) { add(REASONS[k] || k, rejected[k]); });
    var held = snap.ballots_held || {};
    Object.keys(held).forEach(function (k) { add('暂缓计入（待核查）：' + (REASONS[k] || k), held[k], 'held'); });
    if (!keys.length && !Object.keys(held).length) {
      var tr = el('tr');
      var td = el('td', 'none', '暂无无效选票');
      td.colSpan = 2;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function renderIntegrity(snap) {
    $('hash').textContent = snap.hash || '—';
    $('prev-hash').textContent = snap.prev_hash || '（首个快照）';
    var signed = !!snap.signature;
    $('signature-label').hidden = !signed;
    $('signature').hidden = !signed;
    $('signature').textContent = snap.signature || '';
    $('final-box').hidden = !snap.final;
    $('integrity').classList.toggle('is-final', !!snap.final);
    var finalLink = $('final-link');
    finalLink.hidden = !snap.final;
    finalLink.href = state.mode === 'static' ? 'final.json' : apiPath('/results/final');
  }

  // Per-minute chart: sum every candidate's count per window, stacked by channel.
  function minuteBuckets(series) {
    var byStart = {};
    series.forEach(function (e) {
      var t = Date.parse(e.window_start);
      if (isNaN(t)) { return; }
      var b = byStart[t] || (byStart[t] = { t: t, web: 0, wechat: 0, kiosk: 0, other: 0 });
      var key = b.hasOwnProperty(e.channel) ? e.channel : 'other';
      b[key] += e.count || 0;
    });
    var times = Object.keys(byStart).map(Number).sort(function (a, b) { return a - b; });
    if (!times.length) { return []; }
    var last = times[times.length - 1];
    var first = Math.max(times[0], last - (MINUTES_SHOWN - 1) * 60000);
    var out = [];
    for (var t = first; t <= last; t += 60000) {
      out.push(byStart[t] || { t: t, web: 0, wechat: 0, kiosk: 0, other: 0 });
    }
    return out;
  }

  function niceMax(v) {
    if (v <= 5) { return 5; }
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= v) { return steps[i] * p; } }
    return 10 * p;
  }

  function drawMinutes() {
    var box = $('minute-chart');
    var buckets = minuteBuckets(state.series || []);
    box.textContent = '';
    $('minutes-empty').hidden = buckets.length > 0;
    if (!buckets.length) { return; }
    var W = Math.max(box.clientWidth || 320, 280);
    var H = 200;
    var pad = { l: 44, r: 8, t: 10, b: 26 };
    var total = function (b) { return b.web + b.wechat + b.kiosk + b.other; };
    var top = niceMax(buckets.reduce(function (m, b) { return Math.max(m, total(b)); }, 0));
    var iw = W - pad.l - pad.r;
    var ih = H - pad.t - pad.b;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, 'class': 'minutes-svg' });
    for (var k = 0; k <= 4; k++) {
      var y = pad.t + ih - ih * k / 4;
      s.appendChild(svg('line', { 'class': 'grid', x1: pad.l, x2: W - pad.r, y1: y, y2: y }));
      var lab = svg('text', { 'class': 'axis', x: pad.l - 6, y: y + 4, 'text-anchor': 'end' });
      lab.textContent = fmt(top * k / 4);
      s.appendChild(lab);
    }
    var slot = iw / buckets.length;
    var bw = Math.max(slot * 0.72, 1);
    var every = Math.ceil(buckets.length / Math.max(Math.floor(iw / 56), 1));
    buckets.forEach(function (b, i) {
      var x = pad.l + i * slot + (slot - bw) / 2;
      var y0 = pad.t + ih;
      ['web', 'wechat', 'kiosk', 'other'].forEach(function (key) {
        if (!b[key]) { return; }
        var h = b[key] / top * ih;
        y0 -= h;
        var r = svg('rect', { 'class': 'seg seg--' + key, x: x.toFixed(1), y: y0.toFixed(1), width: bw.toFixed(1), height: h.toFixed(1) });
        var tip = svg('title');
        tip.textContent = formatTime(new Date(b.t).toISOString(), false) + ' ' + fmt(total(b));
        r.appendChild(tip);
        s.appendChild(r);
      });
      if (i % every === 0) {
        var tl = svg('text', { 'class': 'axis', x: (x + bw / 2).toFixed(1), y: H - 8, 'text-anchor': 'middle' });
        tl.textContent = formatTime(new Date(b.t).toISOString(), false).slice(0, 5);
        s.appendChild(tl);
      }
    });
    s.appendChild(svg('line', { 'class': 'axis-line', x1: pad.l, x2: W - pad.r, y1: pad.t + ih, y2: pad.t + ih }));
    box.setAttribute('data-windows', String(buckets.length));
    box.setAttribute('data-total', String(buckets.reduce(function (s2, b) { return s2 + total(b); }, 0)));
    box.appendChild(s);
  }

  // ---- start -------------------------------------------------------------------------------

  async function startApi() {
    state.campaignId = campaignIdFromPath(window.location.pathname);
    if (!state.campaignId) { setStatus('error', '链接不完整，未找到投票活动编号。'); return; }
    try { state.campaign = await getJSON(apiPath('')); } catch (e) { state.campaign = null; }
    renderCampaign(state.campaign);
    await refreshResults();
    if (!isFinal()) { connectStream(); }
  }

  async function startStatic(data) {
    state.campaign = data.campaign || null;
    renderCampaign(state.campaign);
    if (data.snapshot) { applySnapshot(data.snapshot); }
    if (window.location.protocol === 'file:') { // browsers refuse fetch() of files: use the embedded copy
      if (!data.snapshot) { showNoResults(); }
      return;
    }
    await refreshResults();
    if (!isFinal()) { startPolling(); }
  }

  var resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawMinutes, 150);
  });

  state.mode = detectMode();
  if (state.mode === 'static') { startStatic(embedded()); } else { startApi(); }
}());
