"""An h2c (prior knowledge) upstream for capdiag's HTTP/2 lab that answers gRPC-style requests and
resets some streams: every third request gets RST_STREAM(INTERNAL_ERROR) instead of a response.
Uses the `h2` library. Loopback only; exits by itself after 60 s.

  python lab_h2reset.py PORT
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

counter = [0]
lock = threading.Lock()


def handle(sock):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    bodies = {}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                elif isinstance(event, h2.events.StreamEnded):
                    with lock:
                        counter[0] += 1
                        n = counter[0]
                    if n % 3 == 0:
                        conn.reset_stream(event.stream_id, error_code=2)
                    else:
                        conn.send_headers(event.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
                        conn.send_data(event.stream_id, b"\x00\x00\x00\x00\x02ok")
                        conn.send_headers(event.stream_id, [("grpc-status", "0")], end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    return
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    except (ConnectionError, OSError):
        pass
    finally:
        sock.close()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(16)
    listener.settimeout(60)
    try:
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=handle, args=(sock,), daemon=True).start()
    except socket.timeout:
        pass


if __name__ == "__main__":
    main()
