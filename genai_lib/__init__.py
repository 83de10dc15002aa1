"""genai_lib: the shared code of the course *Generative AI, from theory to practice*.

The names every notebook needs are here; the rest lives in one module per idea
(``genai_lib.data``, ``genai_lib.train``, ``genai_lib.models``, ``genai_lib.viz``...).
"""

from genai_lib.config import FAST, get_device, pick, seed_everything

__all__ = ["FAST", "get_device", "pick", "seed_everything"]
__version__ = "0.1.0"
