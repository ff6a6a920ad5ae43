"""The WeChat official account channel, mounted on the ingest port by `routes`
(docs/ARCHITECTURE.md, "Channels").

- `GET /wechat`: the server URL check. `POST /wechat`: messages in safe mode
  (`encrypt_type=aes`), or in plaintext only when no EncodingAESKey is configured (the query
  signature never covers the body); every request must carry our query signature and a
  timestamp within a minute; safe-mode bodies also their `msg_signature`, and must decrypt
  to our appid (crypto.py, endpoint.py). A timestamp and nonce answer only the body they
  first came with: WeChat's retries, never a copied query under a new body (replays.py).
- Text commands (commands.py) and QR/menu events that switch a follower's campaign
  (sessions.py); replies in Chinese (replies.py).
- Retries: each message has a key (sender pseudonym + MsgId, or + CreateTime for events) and
  a row in Postgres `wechat_messages` holding its reply, so any ingest process answers a
  retry the same; a vote's ballot_id is derived from that key (keys.py), so a second
  publish of it is the same ballot, which the tally counts once (voting.py). Answered rows
  are deleted after a day (routes.py `MESSAGE_RETENTION`).
- Deadline: a vote waits at most 3 s for the broker; then WeChat gets `success` and the
  ballot, already in the row, is published in the background or by the outbox sweep.
- H5 voting: `GET /wechat/oauth/callback?code=&state=<campaign>` → a voter token whose
  `sub` is the campaign voter key (never the openid) → `/vote/<campaign>#token=...`.
- `GET /wechat/qr/<campaign>.svg`: a QR code of the OAuth link that opens the campaign's
  vote page inside WeChat with the follower logged in (snsapi_base, silent). Chosen over a
  "follow the account" QR because parameterised follow codes (`qrscene_<campaign>`) can
  only be minted by the WeChat API with an access token; operators who mint those print
  them, and the subscribe/SCAN events here switch the follower to the campaign.
- No raw openid is stored or logged: only voter keys and the sender pseudonym.
"""
