package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// observeUnary logs every unary call and turns a panic in it (or in any
// interceptor after it) into codes.Internal, so one bad request cannot take
// the commune's server down.
func observeUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, recovered(ctx, log, info.FullMethod, p)
			}
			logCall(ctx, log, info.FullMethod, start, err)
		}()
		return handler(ctx, req)
	}
}

// observeStream is observeUnary for streams. A panic in a goroutine the
// handler starts is out of its reach; handlers must not start any that can.
func observeStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				err = recovered(ss.Context(), log, info.FullMethod, p)
			}
			logCall(ss.Context(), log, info.FullMethod, start, err)
		}()
		return handler(srv, ss)
	}
}

// recovered logs a panic with its stack and answers Internal without the
// panic's details, which are for the operator, not the caller.
func recovered(ctx context.Context, log *slog.Logger, method string, p any) error {
	log.ErrorContext(ctx, "panic in call", "method", method, "peer", peerAddr(ctx), "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

// logCall writes one line per call: debug when it succeeded (bulk scoring
// makes many), info when the caller was at fault, error when the server was.
func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK:
	case codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition,
		codes.OutOfRange, codes.DeadlineExceeded, codes.Aborted:
		level = slog.LevelInfo
	default:
		level = slog.LevelError
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
		slog.String("peer", peerAddr(ctx)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
	}
	log.LogAttrs(ctx, level, "call", attrs...)
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
