-- Answered WeChat messages are deleted after a day (services/ingest/wechat/store.py): WeChat
-- retries a message within 15 s, so an older row only keeps a voter key for nothing.
CREATE INDEX wechat_messages_answered ON wechat_messages (created_at) WHERE reply IS NOT NULL;
