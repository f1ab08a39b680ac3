"""Where WebSocket frames end in a relayed byte stream, and the gateway's Close frame."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode

from gateway.transport.frames import GOING_AWAY, FrameBoundaries, close_frame


def frame(payload: bytes, masked: bool, opcode: Opcode = Opcode.BINARY) -> bytes:
    return Frame(opcode, payload).serialize(mask=masked)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # 70 kB frames, a busy CI
@given(sizes=st.lists(st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]), min_size=1,
                      max_size=4),
       masked=st.booleans(), cuts=st.lists(st.integers(min_value=1, max_value=70000), max_size=6))
def test_boundaries_are_found_however_the_stream_is_cut(sizes, masked, cuts):
    frames = [frame(bytes(size), masked) for size in sizes]
    stream = b"".join(frames)
    ends = set()
    at = 0
    for data in frames:
        at += len(data)
        ends.add(at)
    positions = sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)})
    boundaries, fed = FrameBoundaries(), 0
    for position in positions:
        boundaries.feed(stream[fed:position])
        fed = position
        assert boundaries.at_boundary == (fed in ends or fed == 0), (sizes, fed)


def test_a_frame_fed_byte_by_byte_ends_only_at_its_last_byte():
    data = frame(b"x" * 300, masked=True)
    boundaries = FrameBoundaries()
    for i, byte in enumerate(data):
        boundaries.feed(bytes([byte]))
        assert boundaries.at_boundary == (i == len(data) - 1)


def parse_one(data: bytes, masked: bool) -> Frame:
    """``data`` parsed by the websockets library, as a peer would."""
    pending = bytearray(data)

    def read_exact(n: int):
        taken = bytes(pending[:n])
        del pending[:n]
        return taken
        yield  # a generator, as Frame.parse expects its reader to be

    return _run(Frame.parse(read_exact, mask=masked))


def test_the_close_frames_parse_as_1001_either_way():
    for masked in (False, True):
        data = close_frame(GOING_AWAY, "gateway: idle", masked=masked)
        assert data[0] == 0x88 and bool(data[1] & 0x80) == masked
        parsed = parse_one(data, masked)
        assert parsed.opcode is Opcode.CLOSE
        assert Close.parse(parsed.data) == Close(1001, "gateway: idle")


def _run(generator):
    try:
        while True:
            next(generator)
    except StopIteration as done:
        return done.value


def test_each_masked_close_has_its_own_key():
    assert close_frame(1001, masked=True) != close_frame(1001, masked=True)


def test_a_close_frame_marks_its_direction_as_closing():
    boundaries = FrameBoundaries()
    boundaries.feed(frame(b"text", masked=True, opcode=Opcode.TEXT))
    assert not boundaries.closing
    boundaries.feed(close_frame(1000, masked=True)[:1])
    assert not boundaries.closing  # the opcode is known once the header is whole
    boundaries.feed(close_frame(1000, masked=True)[1:])
    assert boundaries.closing and boundaries.at_boundary
