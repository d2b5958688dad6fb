"""India Standard Time: UTC+05:30 all year (India has no daylight saving), so a fixed offset."""

from __future__ import annotations

import datetime

IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
