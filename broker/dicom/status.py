"""Named DIMSE statuses (PS3.7 Annex C, PS3.4 Annex F/K), so no handler yields a bare
number. A test checks each name against the value pynetdicom documents for it."""

SUCCESS = 0x0000
PENDING = 0xFF00
PENDING_WARNING = 0xFF01  # C-FIND pending: an optional key was not supported
CANCEL = 0xFE00

# Failures shared by the N- services (PS3.7 C.4)
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_ATTRIBUTE_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
NO_SUCH_ATTRIBUTE = 0x0105
RESOURCE_LIMITATION = 0x0213

# C-FIND failures (PS3.4 K.4.1.1.4 / C.4.1.1.4)
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000
