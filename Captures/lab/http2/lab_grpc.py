"""gRPC server and client for capdiag's HTTP/2 lab (record.sh). Generic handlers on raw bytes,
no generated code. Loopback only; every loop is bounded in count and time.

  python lab_grpc.py server PORT MODE        MODE: ok | unavailable | stream | maxage
  python lab_grpc.py client TARGET KIND N GAP_MS [THREADS]   KIND: unary | stream
The client prints one JSON object: each call's outcome and the counts by status.
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc


def serve(port, mode):
    def unary(request, context):
        if mode == "unavailable" and int(request or b"0") % 2 == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "lab: backend draining")
        if mode == "maxage":
            time.sleep(0.02)
        return b"ok:" + request

    def stream(request, context):
        # Ten messages 150 ms apart: long enough for record.sh to kill the server mid-stream.
        for i in range(10):
            yield b"part %d" % i
            time.sleep(0.15)

    options = []
    if mode == "maxage":
        options = [("grpc.max_connection_age_ms", 400), ("grpc.max_connection_age_grace_ms", 300)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    handler = grpc.method_handlers_generic_handler("lab.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    # Bounded: the server stops by itself after 60 s if record.sh does not stop it first.
    server.wait_for_termination(timeout=60)


def client(target, kind, count, gap_ms, threads):
    results = []
    lock = threading.Lock()
    channel = grpc.insecure_channel(target)
    unary = channel.unary_unary("/lab.Echo/Unary")
    stream = channel.unary_stream("/lab.Echo/Stream")

    def call(i):
        start = time.time()
        code, details, messages = "OK", "", 0
        try:
            if kind == "unary":
                unary(str(i).encode(), timeout=5)
                messages = 1
            else:
                for _ in stream(str(i).encode(), timeout=5):
                    messages += 1
        except grpc.RpcError as error:
            code, details = error.code().name, error.details() or ""
        with lock:
            results.append({"call": i, "status": code, "details": details, "messages": messages,
                            "start": round(start, 6), "end": round(time.time(), 6)})

    def worker(offset):
        for i in range(offset, count, threads):
            call(i)
            time.sleep(gap_ms / 1000.0)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    channel.close()
    results.sort(key=lambda r: r["call"])
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(json.dumps({"calls": results, "counts": counts}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 1)
