"""Element layouts of every MM7 message, per schema version.

Theory of operation: each official 3GPP schema (REL-5-MM7-1-0 … REL-6-MM7-1-4) fixes
the children of every message element and their order. The encoder walks this table to
emit children in schema order and to refuse a field the target version does not define;
the decoder uses it only to report leniencies (order is never enforced on input).

The table was extracted from the official XSDs; ``tests/protocol/test_layouts.py``
re-extracts it from ``../shared/mm7/schemas`` and fails if the two ever disagree.
Each entry is ``(element local name, required)``.
"""

from __future__ import annotations

from typing import Final

LAYOUTS: Final[dict[str, dict[str, tuple[tuple[str, bool], ...]]]] = {
    "REL-5-MM7-1-0": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("DistributionProtection", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("TimeStamp", False), ("ReplyChargingID", True), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionProtection", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-5-MM7-1-1": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("TimeStamp", False), ("ReplyChargingID", True), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-5-MM7-1-2": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-5-MM7-1-3": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-5-MM7-1-4": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-6-MM7-1-0": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("ChargedPartyID", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("Previouslysentby", False), ("Previouslysentdateandtime", False), ("SenderSPI", False), ("RecipientSPI", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("MMStatusExtension", False), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-6-MM7-1-1": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("ChargedPartyID", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("Previouslysentby", False), ("Previouslysentdateandtime", False), ("SenderSPI", False), ("RecipientSPI", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("MMStatusExtension", False), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-6-MM7-1-2": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("ChargedPartyID", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("Previouslysentby", False), ("Previouslysentdateandtime", False), ("SenderSPI", False), ("RecipientSPI", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("MMStatusExtension", False), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-6-MM7-1-3": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("ChargedPartyID", False), ("DistributionIndicator", False), ("DeliveryCondition", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("Previouslysentby", False), ("Previouslysentdateandtime", False), ("SenderSPI", False), ("RecipientSPI", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("MMStatusExtension", False), ("StatusText", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
    "REL-6-MM7-1-4": {
        "SubmitReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("Recipients", True), ("ServiceCode", False), ("LinkedID", False), ("MessageClass", False), ("TimeStamp", False), ("ReplyCharging", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("DeliveryReport", False), ("ReadReply", False), ("Priority", False), ("Subject", False), ("ChargedParty", False), ("ChargedPartyID", False), ("DistributionIndicator", False), ("DeliveryCondition", False), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False), ("ContentClass", False), ("DRMContent", False), ("Content", False),
        ),
        "SubmitRsp": (
            ("MM7Version", True), ("Status", True), ("MessageID", True),
        ),
        "DeliverReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("VASPID", False), ("VASID", False), ("LinkedID", False), ("Sender", True), ("Recipients", False), ("Previouslysentby", False), ("Previouslysentdateandtime", False), ("SenderSPI", False), ("RecipientSPI", False), ("TimeStamp", False), ("ReplyChargingID", False), ("Priority", False), ("Subject", False), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False), ("UACapabilities", False), ("Content", False),
        ),
        "DeliverRsp": (
            ("MM7Version", True), ("Status", True), ("ServiceCode", False),
        ),
        "CancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False),
        ),
        "CancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReplaceReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("MessageID", True), ("ServiceCode", False), ("TimeStamp", False), ("ReadReply", False), ("EarliestDeliveryTime", False), ("DistributionIndicator", False), ("ContentClass", False), ("DRMContent", False), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False), ("Content", False),
        ),
        "ReplaceRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "extendedCancelReq": (
            ("MM7Version", True), ("SenderIdentification", True), ("CancelID", True),
        ),
        "extendedCancelRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "extendedReplaceReq": (
            ("MM7Version", True), ("VASPID", False), ("VASID", False), ("ServiceCode", False), ("ReplaceID", False), ("TimeStamp", False), ("EarliestDeliveryTime", False), ("ExpiryDate", False), ("ReadReply", False), ("DeliveryReport", False), ("Content", False),
        ),
        "extendedReplaceRsp": (
            ("MM7Version", True), ("MessageID", True), ("Status", True),
        ),
        "DeliveryReportReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("Date", True), ("MMStatus", True), ("MMStatusExtension", False), ("StatusText", False), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False), ("UACapabilities", False),
        ),
        "DeliveryReportRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "ReadReplyReq": (
            ("MM7Version", True), ("MMSRelayServerID", False), ("MessageID", True), ("Recipient", True), ("Sender", True), ("TimeStamp", True), ("MMStatus", True), ("StatusText", False), ("ApplicID", False), ("ReplyApplicID", False), ("AuxApplicInfo", False),
        ),
        "ReadReplyRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "RSErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
        "VASPErrorRsp": (
            ("MM7Version", True), ("Status", True),
        ),
    },
}
