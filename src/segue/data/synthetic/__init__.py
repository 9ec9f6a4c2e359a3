"""Synthetic data in the public formats, so nothing has to be downloaded.

- :func:`~segue.data.synthetic.listens.generate_listens`: ``uid sid count`` listen counts;
- :func:`~segue.data.synthetic.mpd.generate_mpd`: MPD slices (titles follow the content);
- :func:`~segue.data.synthetic.melon.generate_melon`: Kakao Arena Melon files.
"""

from segue.data.synthetic.listens import generate_listens
from segue.data.synthetic.melon import generate_melon
from segue.data.synthetic.mpd import generate_mpd

__all__ = ["generate_listens", "generate_melon", "generate_mpd"]
