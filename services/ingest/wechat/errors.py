"""Refusals of the WeChat channel, each with the code the HTTP layer answers."""

from __future__ import annotations

from services.domain.errors import ForbiddenError, MalformedError, UnauthorizedError


class WeChatSignatureError(ForbiddenError):
    """The request was not signed with our token (or is too old): not from WeChat."""

    code = "bad_wechat_signature"


class WeChatPlaintextError(ForbiddenError):
    """A plaintext push to an account in safe mode: its body is signed by nothing."""

    code = "wechat_safe_mode_only"


class WeChatReplayError(ForbiddenError):
    """A (timestamp, nonce) already used by a push with another body: a copied query."""

    code = "wechat_replayed_query"


class WeChatCipherError(MalformedError):
    """A safe-mode payload that does not decrypt to a well-formed message for our appid."""

    code = "bad_wechat_ciphertext"


class WeChatXmlError(MalformedError):
    code = "bad_wechat_xml"


class WeChatOAuthError(UnauthorizedError):
    """The WeChat API refused the OAuth code (40029 invalid, 40163 already used, ...)."""

    code = "wechat_oauth_failed"


class WeChatSnapshotUserError(ForbiddenError):
    """A 'snapshot' visitor (page opened from a Moments preview) has no real openid."""

    code = "wechat_snapshot_user"
