"""The non-image request types (``req=props``, ``exists``, ``userdata``, ``set`` …), answered in
the format ``req=`` asked for (protocol.md §8).

:func:`answer` is called by the server once the catalogs, the path object, the URL tokens and
the ``req=`` value are known; errors are raised as ``ISError`` and formatted by the server.
"""

from __future__ import annotations

from ..responses.headers import Reply
from . import control, imageinfo, metadata, sets

_HANDLERS = {
    "props": imageinfo.props,
    "ctx": imageinfo.context,
    "imageprops": imageinfo.imageprops,
    "catalogprops": imageinfo.catalogprops,
    "xmp": imageinfo.xmp,
    "exists": metadata.exists,
    "userdata": metadata.userdata,
    "targets": metadata.targets,
    "imageset": metadata.imageset,
    "map": metadata.image_map,
    "xlate": metadata.xlate,
    "set": sets.answer_set,
    "validate": control.validate,
    "resolve": control.resolve,
    "message": control.message,
    "loadcache": control.loadcache,
    "savetofile": control.save_to_file,
    "mbrset": control.mbr_set,
}


def answer(server, ctx) -> Reply:
    """The reply to a non-image request; ``ctx`` is the server's request context."""
    return _HANDLERS[ctx.req.type](server, ctx)
