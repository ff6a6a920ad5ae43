"""What the account says back, in Chinese; no reply ever holds an openid."""

from __future__ import annotations

from typing import Any

from services.domain.campaign import Campaign
from services.domain.errors import VotestreamError

HELP = (
    "发送以下指令参与投票：\n"
    "· 名单 —— 查看候选项目及编号\n"
    "· 投票 1 3 5 —— 按编号投票（空格或逗号分隔，也可用 c03 这样的编号）\n"
    "· 结果 —— 查看当前排名"
)
NO_CAMPAIGN = "当前没有进行中的投票活动，敬请关注。"
BUSY = "系统繁忙，请稍后再试。"

_REFUSALS = {
    "unknown_candidate": "选择中有不存在的候选项目，请发送“名单”查看编号。",
    "duplicate_selection": "同一项目不能重复选择。",
    "campaign_closed": "本次投票已结束，感谢关注。",
    "campaign_not_open": "本次投票尚未开始。",
    "channel_closed": "本次投票不接受微信投票。",
    "ballot_id_taken": "该投票编号已被使用，请重新发送投票指令。",
}


def candidate_list(campaign: Campaign) -> str:
    lines = [f"【{campaign.title}】", campaign.question, ""]
    lines += [f"{n}. {c.title}（{c.unit}）" for n, c in enumerate(campaign.candidates, 1)]
    lines += [
        "",
        f"请选择 {campaign.min_selections}–{campaign.max_selections} 项，发送：投票 1 3 5",
    ]
    return "\n".join(lines)


def vote_accepted(ballot_id: str) -> str:
    return (
        f"投票已收到，正在计票。\n回执编号：{ballot_id}\n"
        "可凭回执编号查询本票状态；每人投票次数以活动规则为准。"
    )


def vote_refused(campaign: Campaign, error: VotestreamError) -> str:
    if error.code == "too_many_selections":
        return f"最多只能选择 {campaign.max_selections} 项，请重新发送。"
    if error.code == "too_few_selections":
        return f"至少需要选择 {campaign.min_selections} 项，请重新发送。"
    return _REFUSALS.get(error.code, "投票未能受理，请检查后重试。")


def standings(campaign: Campaign, snapshot: dict[str, Any] | None) -> str:
    if snapshot is None:
        return f"【{campaign.title}】\n暂无已公布的结果，请稍后再查。"
    numbers = {c.id: n for n, c in enumerate(campaign.candidates, 1)}
    top = snapshot.get("candidates", [])[: campaign.top_n]
    counted = snapshot.get("ballots_counted", 0)
    lines = [f"【{campaign.title}】当前前 {campaign.top_n} 名（已计 {counted} 票）："]
    lines += [
        f"第{c['rank']}名 {numbers.get(c['id'], '?')}. {c['title']} —— {c['votes']} 票" for c in top
    ]
    lines.append(f"更新时间：{snapshot.get('as_of', '')}")
    return "\n".join(lines)


def switched(campaign: Campaign) -> str:
    return f"已进入投票活动：{campaign.title}\n\n{HELP}"
