/*
 * votestream H5 voting page (served by ingest at GET /vote/{campaign_id}).
 * Plain ES2017 without modules or libraries, because it must run in the WeChat
 * in-app browser with no network beyond our own API.
 */
(function () {
  'use strict';

  var TOKEN_KEY = 'votestream.voter_token';
  var FETCH_TIMEOUT_MS = 15000;
  var MAX_AUTO_RETRIES = 8; // 503 answers: the broker is busy, retrying the same ballot_id is safe
  var RESEND_SECONDS = 60;

  // Friendly text for every error code the ingest API returns (schemas/openapi.ingest.json).
  var ERRORS = {
    too_many_selections: '选择的项目超过上限，请减少后再提交。',
    too_few_selections: '选择的项目不足，请按要求选择后再提交。',
    unknown_candidate: '所选项目不在候选名单中，请刷新页面后重试。',
    duplicate_selection: '同一项目不能重复选择，请刷新页面后重试。',
    invalid_selection: '选择不符合投票规则，请检查后重试。',
    campaign_closed: '投票已结束，感谢您的关注。',
    campaign_not_open: '投票尚未开始，请在投票时间内参与。',
    unauthorized: '身份验证已失效，请重新验证手机号后提交。',
    rate_limited: '操作过于频繁，请稍后再试。',
    unavailable: '系统繁忙，请稍后重试。',
    limit_exceeded: '您已投过票，超出本次投票的次数限制。',
    malformed: '请求有误，请刷新页面后重试。',
    too_large: '请求过大，请刷新页面后重试。',
    not_found: '未找到该投票活动，请检查链接是否正确。',
    missing_token: '请先完成手机号验证，再提交投票。',
    invalid_token: '身份验证已失效，请重新验证手机号后提交。',
    token_expired: '登录已过期，请重新验证手机号后提交。',
    bad_phone: '手机号格式不正确。',
    malformed_json: '请求有误，请刷新页面后重试。',
    bad_selections: '选择不符合投票规则，请检查后重试。',
    bad_ballot_id: '选票编号无效，请重新提交。',
    ballot_id_taken: '选票编号冲突，请重新提交。',
    unknown_campaign: '未找到该投票活动，请检查链接是否正确。',
    channel_closed: '网上投票渠道已关闭，请通过其他渠道参与。',
    network: '网络连接异常，选票可能未送达。请点击“重新提交”，系统使用同一选票编号，不会重复计票。'
  };

  // Why a ballot was not counted (GET /v1/ballots/{id} reasons).
  var REASONS = {
    limit_exceeded: '已超出投票次数限制（每人限投一次）',
    campaign_closed: '投票已结束',
    campaign_not_open: '投票尚未开始',
    invalid_selection: '选择不符合投票规则',
    too_many_selections: '选择项目超过上限',
    too_few_selections: '选择项目不足',
    unknown_candidate: '包含不在名单中的项目',
    duplicate_selection: '包含重复的项目'
  };

  var state = {
    campaignId: null,
    campaign: null,
    token: null,
    selected: [],      // candidate ids in the order the voter picked them
    pending: null,     // {ballot_id, selections} sent but not yet answered with 202
    busy: false,
    blockedUntil: 0    // rate limit: no submit before this time (ms)
  };

  function $(id) { return document.getElementById(id); }

  // sessionStorage throws in some private modes; the page must still work there.
  function load(key) {
    try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
  }
  function save(key, value) {
    try {
      if (value === null) { window.sessionStorage.removeItem(key); }
      else { window.sessionStorage.setItem(key, value); }
    } catch (e) { /* private mode: keep going without persistence */ }
  }
  function pendingKey() { return 'votestream.pending.' + state.campaignId; }
  function receiptKey() { return 'votestream.receipt.' + state.campaignId; }

  function campaignIdFromPath(pathname) {
    var m = /\/vote\/([^\/]+)\/?$/.exec(pathname);
    return m ? decodeURIComponent(m[1]) : null;
  }

  // The WeChat OAuth callback redirects here with #token=<jwt>; keep it out of the
  // address bar (and out of screenshots and shared links) as soon as we have read it.
  function takeTokenFromHash() {
    var hash = window.location.hash.replace(/^#/, '');
    if (!hash) { return null; }
    var token = new URLSearchParams(hash).get('token');
    if (token) {
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
    }
    return token;
  }

  function uuid4() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' +
      h.slice(16, 20) + '-' + h.slice(20);
  }

  function delay(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function parseRetryAfter(value) {
    var seconds = parseInt(value || '', 10);
    if (isNaN(seconds)) {
      var when = Date.parse(value || '');
      seconds = isNaN(when) ? 2 : Math.ceil((when - Date.now()) / 1000);
    }
    return Math.min(Math.max(seconds, 1), 120);
  }

  // One JSON request. Resolves with {status, data, retryAfter}; rejects only when the
  // request may not have reached the server (network error or timeout).
  async function api(method, path, body) {
    var headers = { 'Accept': 'application/json' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; }
    if (state.token) { headers.Authorization = 'Bearer ' + state.token; }
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS) : 0;
    try {
      var res = await fetch(path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
        signal: controller ? controller.signal : undefined
      });
      var data = null;
      try { data = await res.json(); } catch (e) { data = null; }
      return { status: res.status, data: data, retryAfter: parseRetryAfter(res.headers.get('Retry-After')) };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorCode(res) {
    if (res.data && res.data.error && res.data.error.code) { return res.data.error.code; }
    return { 401: 'unauthorized', 404: 'not_found', 429: 'rate_limited', 503: 'unavailable' }[res.status] ||
      'http_' + res.status;
  }

  function errorText(code) {
    return ERRORS[code] || ('提交未成功（' + code + '），请稍后重试。');
  }

  function showMessage(text, kind) {
    var box = $('message');
    box.textContent = text || '';
    box.hidden = !text;
    box.className = 'notice ' + (kind === 'info' ? 'notice--info' : 'notice--error');
  }

  function formatTime(iso, timeZone) {
    var when = new Date(iso);
    if (!iso || isNaN(when.getTime())) { return ''; }
    var opts = { year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false };
    try {
      if (timeZone) { opts.timeZone = timeZone; }
      return when.toLocaleString('zh-CN', opts);
    } catch (e) {
      delete opts.timeZone;
      return when.toLocaleString('zh-CN', opts);
    }
  }

  // ---- campaign and candidates -------------------------------------------------

  function renderCampaign(c) {
    document.title = c.title + ' - 网上投票';
    $('title').textContent = c.title;
    $('organizer').textContent = c.organizer || '';
    $('question').textContent = c.question || '';
    $('legend').textContent = '候选名单（共 ' + c.candidates.length + ' 项）';
    var b = c.ballot;
    $('rules').textContent = b.min_selections === b.max_selections
      ? '请选择 ' + b.max_selections + ' 项。'
      : '请选择 ' + b.min_selections + '–' + b.max_selections + ' 项。';
    var from = formatTime(c.opens_at, c.timezone);
    var to = formatTime(c.closes_at, c.timezone);
    $('window').textContent = from && to ? '投票时间：' + from + ' 至 ' + to : '';
    renderCandidates(c.candidates);
    $('intro').hidden = false;
    $('ballot').hidden = false;
    $('submit-bar').hidden = false;
    showPhase(c.status, from);
  }

  function showPhase(status, from) {
    var phase = $('phase');
    phase.textContent = status === 'scheduled' ? '投票尚未开始' + (from ? '，开始时间：' + from : '') + '。'
      : status === 'closed' ? '投票已结束，感谢您的关注。' : '';
    phase.hidden = !phase.textContent;
  }

  function renderCandidates(candidates) {
    var list = $('candidates');
    list.textContent = '';
    candidates.forEach(function (cand, i) {
      var li = document.createElement('li');
      li.className = 'candidate';
      var label = document.createElement('label');
      label.className = 'choice';
      label.htmlFor = 'cand-' + cand.id;
      var input = document.createElement('input');
      input.type = 'checkbox';
      input.id = 'cand-' + cand.id;
      input.value = cand.id;
      input.setAttribute('data-candidate', cand.id);
      input.setAttribute('data-testid', 'candidate-' + cand.id);
      var num = document.createElement('span');
      num.className = 'num';
      num.textContent = String(i + 1); // the same numbers WeChat text votes use ("投票 1 3 5")
      var text = document.createElement('span');
      text.className = 'text';
      var title = document.createElement('span');
      title.className = 'ctitle';
      title.textContent = cand.title;
      var unit = document.createElement('span');
      unit.className = 'unit';
      unit.textContent = cand.unit || '';
      text.appendChild(title);
      text.appendChild(unit);
      label.appendChild(input);
      label.appendChild(num);
      label.appendChild(text);
      li.appendChild(label);
      list.appendChild(li);
    });
  }

  function checkboxes() {
    return Array.prototype.slice.call($('candidates').querySelectorAll('input[type=checkbox]'));
  }

  function onToggle(event) {
    var input = event.target;
    if (!input || input.type !== 'checkbox') { return; }
    var max = state.campaign.ballot.max_selections;
    var at = state.selected.indexOf(input.value);
    if (input.checked && at < 0) {
      if (state.selected.length >= max) { input.checked = false; } // belt and braces: disabled anyway
      else { state.selected.push(input.value); }
    } else if (!input.checked && at >= 0) {
      state.selected.splice(at, 1);
    }
    refresh();
  }

  // The one place that derives what is enabled from state, so the rules cannot drift.
  function refresh() {
    var c = state.campaign;
    if (!c) { return; }
    var min = c.ballot.min_selections;
    var max = c.ballot.max_selections;
    var n = state.selected.length;
    var locked = state.busy || state.pending !== null || c.status !== 'open';
    checkboxes().forEach(function (input) {
      var chosen = state.selected.indexOf(input.value) >= 0;
      input.checked = chosen;
      input.disabled = locked || (!chosen && n >= max);
      var li = input.closest('li');
      li.classList.toggle('is-selected', chosen);
      li.classList.toggle('is-disabled', input.disabled);
    });
    var hint = n < min ? '，至少选择 ' + min + ' 项' : (n >= max ? '，已达上限' : '');
    $('counter').textContent = '已选 ' + n + '/' + max + hint;
    $('counter').classList.toggle('is-full', n >= max);
    var waitS = Math.ceil((state.blockedUntil - Date.now()) / 1000);
    var submit = $('submit');
    submit.disabled = c.status !== 'open' || state.busy || n < min || n > max || waitS > 0;
    submit.textContent = state.busy ? '正在提交…'
      : waitS > 0 ? '请 ' + waitS + ' 秒后再试'
      : state.pending ? '重新提交' : '提交投票';
  }

  // ---- phone login ---------------------------------------------------------------

  function normalizePhone(raw) {
    var digits = String(raw || '').replace(/[\s\-()]/g, '');
    if (/^1\d{10}$/.test(digits)) { return '+86' + digits; }
    if (/^861\d{10}$/.test(digits)) { return '+' + digits; }
    if (/^\+\d{6,15}$/.test(digits)) { return digits; }
    return null;
  }

  function setLoginStatus(text, isError) {
    var s = $('login-status');
    s.textContent = text;
    s.classList.toggle('is-error', !!isError);
  }

  function showLogin(show) {
    $('login').hidden = !show;
  }

  function startResendCountdown(seconds) {
    var button = $('send-code');
    var until = Date.now() + seconds * 1000;
    button.disabled = true;
    var tick = function () {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        button.disabled = false;
        button.textContent = '重新获取验证码';
        return;
      }
      button.textContent = '重新获取（' + left + ' 秒）';
      setTimeout(tick, 1000);
    };
    tick();
  }

  async function sendCode() {
    var phone = normalizePhone($('phone').value);
    if (!phone) {
      setLoginStatus('请输入正确的手机号（11 位）。', true);
      $('phone').focus();
      return;
    }
    $('send-code').disabled = true;
    setLoginStatus('正在发送验证码…', false);
    var res;
    try { res = await api('POST', '/v1/otp', { phone: phone }); }
    catch (e) {
      $('send-code').disabled = false;
      setLoginStatus('网络连接异常，请稍后重试。', true);
      return;
    }
    if (res.status === 202 || res.status === 200) {
      var minutes = Math.max(1, Math.round(((res.data && res.data.expires_in) || 300) / 60));
      setLoginStatus('验证码已发送，' + minutes + ' 分钟内有效。', false);
      startResendCountdown(RESEND_SECONDS);
      $('code').focus();
      return;
    }
    var code = errorCode(res);
    if (code === 'rate_limited') { startResendCountdown(res.retryAfter); }
    else { $('send-code').disabled = false; }
    setLoginStatus(res.status === 400 ? '手机号格式不正确。'
      : code === 'rate_limited' ? '发送过于频繁，请 ' + res.retryAfter + ' 秒后再试。'
      : errorText(code), true);
  }

  async function verifyCode(event) {
    event.preventDefault();
    var phone = normalizePhone($('phone').value);
    var code = String($('code').value || '').replace(/\s/g, '');
    if (!phone) { setLoginStatus('请输入正确的手机号（11 位）。', true); $('phone').focus(); return; }
    if (!/^\d{4,8}$/.test(code)) { setLoginStatus('请输入短信中的数字验证码。', true); $('code').focus(); return; }
    $('verify').disabled = true;
    setLoginStatus('正在验证…', false);
    var res;
    try { res = await api('POST', '/v1/otp/verify', { phone: phone, code: code }); }
    catch (e) { res = null; }
    $('verify').disabled = false;
    if (!res) { setLoginStatus('网络连接异常，请稍后重试。', true); return; }
    if (res.status === 200 && res.data && res.data.token) {
      useToken(res.data.token);
      showMessage('验证成功，请点击“提交投票”。', 'info');
      var next = $('submit').disabled ? checkboxes()[0] : $('submit');
      if (next) { next.focus(); }
      return;
    }
    var err = errorCode(res);
    setLoginStatus(res.status === 401 ? '验证码错误或已过期，请重新输入。'
      : err === 'rate_limited' ? '尝试次数过多，请 ' + res.retryAfter + ' 秒后再试。'
      : errorText(err), true);
  }

  function useToken(token) {
    state.token = token;
    save(TOKEN_KEY, token);
    showLogin(!token);
    if (token) { setLoginStatus('', false); }
  }

  // ---- casting -------------------------------------------------------------------

  function savePending() {
    save(pendingKey(), state.pending ? JSON.stringify(state.pending) : null);
  }

  async function submitBallot(event) {
    event.preventDefault();
    if (state.busy) { return; }
    if (!state.token) {
      showLogin(true);
      setLoginStatus('请先验证手机号，再提交投票。', true);
      $('login').scrollIntoView({ block: 'start' });
      $('phone').focus();
      return;
    }
    if (!state.pending) {
      // Made once per ballot and kept across retries: the server counts an id at most once.
      state.pending = { ballot_id: uuid4(), selections: state.selected.slice() };
      savePending();
    }
    state.busy = true;
    showMessage('');
    refresh();
    try { await castWithRetries(); }
    finally {
      state.busy = false;
      refresh();
    }
  }

  async function castWithRetries() {
    var path = '/v1/campaigns/' + encodeURIComponent(state.campaignId) + '/ballots';
    for (var attempt = 1; ; attempt++) {
      var res;
      try { res = await api('POST', path, state.pending); }
      catch (e) {
        showMessage(errorText('network'));
        return;
      }
      if (res.status === 202 || res.status === 200) { accepted(res.data); return; }
      var code = errorCode(res);
      if (res.status === 503 && attempt <= MAX_AUTO_RETRIES) {
        showMessage('系统繁忙，' + res.retryAfter + ' 秒后自动重试（第 ' + attempt + ' 次）…', 'info');
        await delay(res.retryAfter * 1000);
        continue;
      }
      refused(res, code);
      return;
    }
  }

  function refused(res, code) {
    if (code === 'rate_limited') {
      state.blockedUntil = Date.now() + res.retryAfter * 1000;
      showMessage('操作过于频繁，请 ' + res.retryAfter + ' 秒后再试。');
      tickBlocked();
      return;
    }
    if (code === 'unavailable') { showMessage(errorText(code)); return; }
    // Any other answer means the server did not take this ballot: start afresh.
    state.pending = null;
    savePending();
    if (res.status === 401) {
      useToken(null);
      showLogin(true);
    }
    if (code === 'campaign_closed' || code === 'campaign_not_open') {
      state.campaign.status = code === 'campaign_closed' ? 'closed' : 'scheduled';
      showPhase(state.campaign.status, '');
    }
    var text = errorText(code);
    var b = state.campaign.ballot;
    if (code === 'too_many_selections') { text = '最多只能选择 ' + b.max_selections + ' 项，请减少后再提交。'; }
    if (code === 'too_few_selections') { text = '至少需要选择 ' + b.min_selections + ' 项，请补充后再提交。'; }
    showMessage(text);
    $('message').focus();
  }

  function tickBlocked() {
    refresh();
    if (state.blockedUntil > Date.now()) { setTimeout(tickBlocked, 1000); }
    else { showMessage(''); }
  }

  function accepted(data) {
    var receipt = {
      ballot_id: (data && data.ballot_id) || state.pending.ballot_id,
      receipt: (data && data.receipt) || '',
      selections: state.pending.selections
    };
    state.pending = null;
    savePending();
    save(receiptKey(), JSON.stringify(receipt));
    showReceipt(receipt, true);
  }

  function showReceipt(receipt, moveFocus) {
    showMessage('');
    $('ballot').hidden = true;
    $('login').hidden = true;
    $('dock').hidden = true;
    $('receipt-ballot').textContent = receipt.ballot_id;
    $('receipt-code').textContent = receipt.receipt;
    renderChoices(receipt.selections || []);
    $('result').hidden = false;
    setFate('pending');
    if (moveFocus) { $('result-heading').focus(); }
    pollFate(receipt.ballot_id);
  }

  function renderChoices(ids) {
    var byId = {};
    state.campaign.candidates.forEach(function (c, i) { byId[c.id] = { num: i + 1, title: c.title }; });
    var list = $('choices');
    list.textContent = '';
    ids.forEach(function (id) {
      var c = byId[id] || { num: '?', title: id };
      var li = document.createElement('li');
      var num = document.createElement('span');
      num.className = 'num';
      num.textContent = String(c.num);
      li.appendChild(num);
      li.appendChild(document.createTextNode(c.title));
      list.appendChild(li);
    });
  }

  function setFate(status, reason) {
    var fate = $('fate');
    fate.className = 'fate fate--' + status;
    fate.setAttribute('data-status', status);
    fate.textContent = status === 'counted' ? '已计入'
      : status === 'rejected' ? '未计入：' + (REASONS[reason] || reason || '不符合投票规则')
      : status === 'unknown' ? '仍在处理中，请稍后凭选票编号查询'
      : '待计入（正在计票…）';
  }

  // Counting is asynchronous (Kafka → tally), so ask with growing pauses until the fate is known.
  async function pollFate(ballotId) {
    var path = '/v1/ballots/' + encodeURIComponent(ballotId);
    var wait = 800;
    var deadline = Date.now() + 10 * 60 * 1000;
    while (Date.now() < deadline) {
      await delay(wait);
      wait = Math.min(wait * 1.6, 15000);
      var res;
      try { res = await api('GET', path); } catch (e) { continue; }
      if (res.status === 429) { wait = res.retryAfter * 1000; continue; }
      var d = res.status === 200 ? res.data : null;
      if (d && (d.status === 'counted' || d.status === 'rejected')) {
        setFate(d.status, d.reason);
        return;
      }
    }
    setFate('unknown');
  }

  // ---- start -----------------------------------------------------------------------

  function restoreSession() {
    var receipt = load(receiptKey());
    if (receipt) {
      try { showReceipt(JSON.parse(receipt), false); return true; } catch (e) { save(receiptKey(), null); }
    }
    var pending = load(pendingKey());
    if (pending) {
      try {
        state.pending = JSON.parse(pending);
        state.selected = state.pending.selections.slice();
        showMessage('上次提交未确认送达，请点击“重新提交”（选票编号不变，不会重复计票）。', 'info');
      } catch (e) { save(pendingKey(), null); }
    }
    return false;
  }

  async function start() {
    state.campaignId = campaignIdFromPath(window.location.pathname);
    var fromHash = takeTokenFromHash();
    if (fromHash) { save(TOKEN_KEY, fromHash); }
    state.token = fromHash || load(TOKEN_KEY);
    $('candidates').addEventListener('change', onToggle);
    $('ballot').addEventListener('submit', function (event) { event.preventDefault(); });
    $('submit').addEventListener('click', submitBallot);
    $('login-form').addEventListener('submit', verifyCode);
    $('send-code').addEventListener('click', sendCode);

    if (!state.campaignId) { return fail('链接不完整，未找到投票活动编号。'); }
    var res;
    try { res = await api('GET', '/v1/campaigns/' + encodeURIComponent(state.campaignId)); }
    catch (e) { return fail('无法连接服务器，请检查网络后刷新页面。'); }
    if (res.status !== 200 || !res.data || !res.data.candidates) {
      return fail(res.status === 404 ? errorText('not_found') : '加载投票信息失败，请稍后刷新页面。');
    }
    state.campaign = res.data;
    $('loading').hidden = true;
    $('main').setAttribute('aria-busy', 'false');
    renderCampaign(state.campaign);
    // The phone login appears only when the voter first tries to submit without a token.
    if (!restoreSession()) { refresh(); }
  }

  function fail(text) {
    $('loading').hidden = true;
    $('main').setAttribute('aria-busy', 'false');
    showMessage(text);
  }

  start();
}());
