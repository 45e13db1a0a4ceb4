"""Print, for each lab check, the wrong answers of `wrong_answers.py` that it must refuse (what the check catches).

    python labs/instructor/catalogue.py
"""
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrong_answers  # noqa: E402

by_check = defaultdict(list)
for check, fn, *phrase in wrong_answers.WRONG: by_check[check].append(fn.__name__)
for check, names in by_check.items(): print(f"{check} ({len(names)}): {', '.join(names)}")
print(f"{sum(map(len, by_check.values()))} wrong answers over {len(by_check)} checks")
