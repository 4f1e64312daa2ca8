"""Just enough MQTT 3.1.1 for the platform's own connection to its broker, on asyncio.

Why not paho-mqtt: its subscriber loop tops out near 21,000 messages a second on two cores, counting
only, and acknowledges a QoS 1 message as it arrives, before anything is stored. Here PUBLISH packets
are parsed straight out of the socket buffer and handed over in batches, and their PUBACKs are sent
only when the caller says the batch is stored (in order, as the protocol asks), so the broker keeps
and redelivers whatever a crash interrupted. bench/mqtt_ingest.py measures both."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client identifier rejected",
                   3: "server unavailable", 4: "bad user name or password", 5: "not authorized"}
READ_CHUNK = 1 << 18


class MqttError(Exception):
    """The broker refused us, broke the protocol, or the connection is gone."""


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return len(data).to_bytes(2, "big") + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (128 if length else 0))
        if not length:
            break
    return bytes([kind << 4 | flags]) + bytes(encoded) + body


def _remaining_length(buf: bytearray, i: int, size: int) -> tuple[int, int] | None:
    """The packet's remaining length and where its body starts; None while bytes are missing."""
    length, multiplier = 0, 1
    while i < size:
        byte = buf[i]
        i += 1
        length += (byte & 127) * multiplier
        if byte < 128:
            return length, i
        multiplier *= 128
        if multiplier > 128 ** 3:
            raise MqttError("malformed packet length from the broker")
    return None


class MqttClient:
    """One connection: subscribe, take the received messages in batches, acknowledge them once
    stored, publish. Use `connect()`; `close()` when done."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keepalive: int) -> None:
        self._reader, self._writer, self._keepalive = reader, writer, keepalive
        self._buffer = bytearray()
        self._inbox: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}  # (packet type, id) -> reply
        self._next_id = 0
        self._error: MqttError | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(cls, host: str, port: int, *, client_id: str, username: str | None = None,
                      password: str | None = None, clean_session: bool = True, keepalive: int = 30,
                      timeout: float = 10.0) -> MqttClient:
        """Connect and wait for the broker's CONNACK; MqttError says why it refused."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise MqttError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None
        flags = (0x02 if clean_session else 0) | (0x80 if username is not None else 0) | (
            0x40 if password is not None else 0)
        body = _string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _string(client_id)
        body += (_string(username) if username is not None else b"") + (
            _string(password) if password is not None else b"")
        writer.write(_packet(CONNECT, 0, body))
        try:
            header = await asyncio.wait_for(reader.readexactly(4), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise MqttError(f"the MQTT broker at {host}:{port} closed the connection: {exc!r}") from None
        if header[0] >> 4 != CONNACK or header[3] != 0:
            writer.close()
            reason = CONNACK_REASONS.get(header[3], f"code {header[3]}")
            raise MqttError(f"the MQTT broker at {host}:{port} refused the connection: {reason}")
        client = cls(reader, writer, keepalive)
        client._tasks = [asyncio.create_task(client._read_loop()), asyncio.create_task(client._ping_loop())]
        return client

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def _reply(self, kind: int, packet_id: int, packet: bytes, timeout: float) -> bytes:
        self._check()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, packet_id)] = future
        self._writer.write(packet)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise MqttError(f"no answer from the broker within {timeout:g} s") from None
        finally:
            self._waiting.pop((kind, packet_id), None)

    async def subscribe(self, topics: list[tuple[str, int]], *, timeout: float = 10.0) -> list[int]:
        """Subscribe; the granted QoS per topic (0x80: refused)."""
        packet_id = self._packet_id()
        body = packet_id.to_bytes(2, "big") + b"".join(_string(t) + bytes([q]) for t, q in topics)
        granted = await self._reply(SUBACK, packet_id, _packet(SUBSCRIBE, 2, body), timeout)
        return list(granted)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, timeout: float = 10.0) -> None:
        """Publish; at QoS 1 returns once the broker has acknowledged the message."""
        if qos == 0:
            self._check()
            self._writer.write(_packet(PUBLISH, 0, _string(topic) + payload))
            return
        packet_id = self._packet_id()
        await self._reply(PUBACK, packet_id, _packet(PUBLISH, 2, _string(topic) + packet_id.to_bytes(2, "big")
                                                     + payload), timeout)

    async def receive(self, *, most: int) -> list[Message]:
        """The messages received so far, at most `most`, waiting for the first one."""
        while not self._inbox:
            self._check()
            self._arrived.clear()
            await self._arrived.wait()
        inbox = self._inbox
        count = min(most, len(inbox))
        return [inbox.popleft() for _ in range(count)]

    def acknowledge(self, messages: list[Message]) -> None:
        """Send the PUBACKs of stored QoS 1 messages, in the order they came."""
        self._check()
        acks = [b"\x40\x02" + m.packet_id.to_bytes(2, "big") for m in messages if m.qos == 1]
        if acks:
            self._writer.write(b"".join(acks))

    async def drain(self) -> None:
        with contextlib.suppress(OSError):
            await self._writer.drain()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, error: MqttError) -> None:
        if self._error is None:
            self._error = error
        self._arrived.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)

    async def _ping_loop(self) -> None:
        while self._error is None:
            await asyncio.sleep(self._keepalive / 2)
            try:
                self._writer.write(bytes([PINGREQ << 4, 0]))
            except (OSError, RuntimeError) as exc:
                self._fail(MqttError(f"connection lost: {exc}"))

    async def _read_loop(self) -> None:
        try:
            while True:
                chunk = await self._reader.read(READ_CHUNK)
                if not chunk:
                    raise MqttError("the broker closed the connection")
                self._buffer += chunk
                if self._parse():
                    self._arrived.set()
        except OSError as exc:
            self._fail(MqttError(f"connection lost: {exc}"))
        except MqttError as exc:
            self._fail(exc)

    def _parse(self) -> bool:
        """Take the whole packets off the buffer; True if messages arrived."""
        buf, pos, size, arrived = self._buffer, 0, len(self._buffer), False
        while size - pos >= 2:
            header, byte = buf[pos], buf[pos + 1]
            if byte < 128:  # the common case: a packet under 128 bytes
                length, i = byte, pos + 2
            else:
                decoded = _remaining_length(buf, pos + 1, size)
                if decoded is None:
                    break
                length, i = decoded
            if i + length > size:
                break  # the rest of the packet is still on its way
            end, kind = i + length, header >> 4
            if kind == PUBLISH:
                qos = (header >> 1) & 3
                topic_end = i + 2 + (buf[i] << 8 | buf[i + 1])
                topic = buf[i + 2:topic_end].decode()
                packet_id = (buf[topic_end] << 8 | buf[topic_end + 1]) if qos else 0
                start = topic_end + 2 if qos else topic_end
                self._inbox.append(Message(topic, bytes(buf[start:end]), qos, packet_id))
                arrived = True
            elif kind in (PUBACK, SUBACK):
                packet_id = buf[i] << 8 | buf[i + 1]
                future = self._waiting.get((kind, packet_id))
                if future is not None and not future.done():
                    future.set_result(bytes(buf[i + 2:end]))
            elif kind != PINGRESP:
                raise MqttError(f"unexpected MQTT packet type {kind} from the broker")
            pos = end
        del buf[:pos]
        return arrived

    async def close(self) -> None:
        """Disconnect cleanly (a persistent session stays on the broker)."""
        with contextlib.suppress(OSError, RuntimeError):
            if self._error is None:
                self._writer.write(bytes([DISCONNECT << 4, 0]))
                await self._writer.drain()
        self._fail(MqttError("closed"))
        for task in self._tasks:
            task.cancel()
        self._writer.close()
        with contextlib.suppress(OSError, RuntimeError):
            await self._writer.wait_closed()
