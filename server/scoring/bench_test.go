package scoring_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// tcpClient serves on a loopback TCP port, as a tool on the same machine
// would reach the server.
func tcpClient(b *testing.B) rasoatv1.ScoringServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return rasoatv1.NewScoringServiceClient(startServer(b, lis, nil))
}

// BenchmarkAssessStream sends batches of 1,000 households on one stream,
// pipelined (the client sends while it reads answers, as a bulk import
// would), and reports households scored per second end to end.
func BenchmarkAssessStream(b *testing.B) {
	benchStream(b, rasoatv1.AssessmentView_ASSESSMENT_VIEW_FULL)
}

// BenchmarkAssessStreamBasic is the same with ASSESSMENT_VIEW_BASIC, the
// verdict without the per-indicator reasons, as bulk tools ask for it.
func BenchmarkAssessStreamBasic(b *testing.B) {
	benchStream(b, rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC)
}

func benchStream(b *testing.B, view rasoatv1.AssessmentView) {
	streamTo(b, tcpClient(b), view)
}

// BenchmarkAssessStreamCeiling is BenchmarkAssessStream against a server
// that does no work: it answers every batch with the bytes rasoatd
// answered the first one with. Its rate is the most any server could give
// that client on this machine, whose CPU the two share; run with
// BenchmarkAssessStream, the ratio of the two rates is the server's cost
// measured against a peer of the same run, which a shared machine's speed
// does not move.
func BenchmarkAssessStreamCeiling(b *testing.B) {
	resp, err := proto.Marshal(firstResponse(b, rasoatv1.AssessmentView_ASSESSMENT_VIEW_FULL))
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: rasoatv1.ScoringService_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "AssessStream",
			ClientStreams: true,
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				var req rawMsg
				for {
					if err := stream.RecvMsg(&req); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					if err := stream.SendMsg(rawMsg(resp)); err != nil {
						return err
					}
				}
			},
		}},
	}, struct{}{})
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	streamTo(b, rasoatv1.NewScoringServiceClient(conn), rasoatv1.AssessmentView_ASSESSMENT_VIEW_FULL)
}

// firstResponse is rasoatd's answer to the benchmarks' batch.
func firstResponse(b *testing.B, view rasoatv1.AssessmentView) *rasoatv1.AssessStreamResponse {
	stream, err := tcpClient(b).AssessStream(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: benchHouseholds(1000), View: view}); err != nil {
		b.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

// streamTo runs the pipelined stream of BenchmarkAssessStream against c.
func streamTo(b *testing.B, c rasoatv1.ScoringServiceClient, view rasoatv1.AssessmentView) {
	req := &rasoatv1.AssessStreamRequest{Households: benchHouseholds(1000), View: view}
	encoded, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	stream, err := c.AssessStream(ctx, grpc.ForceCodecV2(encodedOnce{req, encoded}))
	if err != nil {
		b.Fatal(err)
	}
	// One round trip first, so that connection set-up is not measured.
	if err := stream.Send(req); err != nil {
		b.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		b.Fatal(err)
	}
	for i, r := range first.GetResults() {
		if r.GetAssessment() == nil {
			b.Fatalf("household %d: %v", i, r.GetViolations())
		}
	}
	respSize := float64(proto.Size(first)) / float64(len(first.GetResults()))

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if err := stream.Send(req); err != nil {
				sent <- err
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	n := 0
	for range b.N {
		res, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		n += len(res.GetResults())
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	reportRate(b, n, cpu)
	b.ReportMetric(respSize, "resp-B/household")
}

// BenchmarkAssessUnary scores the same households one call each, from
// GOMAXPROCS concurrent callers on one connection.
func BenchmarkAssessUnary(b *testing.B) {
	c := tcpClient(b)
	hs := benchHouseholds(1000)
	if _, err := c.Assess(b.Context(), &rasoatv1.AssessRequest{Household: hs[0]}); err != nil {
		b.Fatal(err)
	}
	var next, n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % int64(len(hs))
			if _, err := c.Assess(context.Background(), &rasoatv1.AssessRequest{Household: hs[i]}); err != nil {
				b.Error(err)
				return
			}
			n.Add(1)
		}
	})
	reportRate(b, int(n.Load()), cpu)
}

// BenchmarkAssessStreamServer is BenchmarkAssessStream with a client that
// costs almost nothing: it sends the batch pre-encoded and does not decode
// the answers (BenchmarkAssessStream checks them). On a small machine the
// client of the end-to-end benchmark takes a good part of the CPU; this one
// measures what the server alone sustains.
func BenchmarkAssessStreamServer(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	conn := startServer(b, lis, nil)
	batch, err := proto.Marshal(&rasoatv1.AssessStreamRequest{Households: benchHouseholds(1000)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	desc := &rasoatv1.ScoringService_ServiceDesc.Streams[0]
	stream, err := conn.NewStream(ctx, desc, "/rasoat.v1.ScoringService/AssessStream", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		b.Fatal(err)
	}
	var resp rawMsg
	if err := stream.SendMsg(rawMsg(batch)); err != nil {
		b.Fatal(err)
	}
	if err := stream.RecvMsg(&resp); err != nil {
		b.Fatal(err)
	}
	var first rasoatv1.AssessStreamResponse
	if err := proto.Unmarshal(resp, &first); err != nil || len(first.GetResults()) != 1000 {
		b.Fatalf("first response: %d results, %v", len(first.GetResults()), err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if err := stream.SendMsg(rawMsg(batch)); err != nil {
				sent <- err
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	for range b.N {
		if err := stream.RecvMsg(&resp); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N*1000, cpu)
}

// reportRate reports n households in the benchmark's time, and the CPU
// the whole process (client and server) spent on each since cpu0.
func reportRate(b *testing.B, n int, cpu0 time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "households/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n), "cpu-µs/household")
}

// rawMsg is a message already in wire form.
type rawMsg []byte

// rawCodec passes wire bytes through; its name makes the server read them
// as protobuf.
// encodedOnce is the proto codec, except that it sends msg as encoded
// before the clock started: a bulk tool encodes each of its households
// once, and sending the same batch again and again would have the
// benchmark's client encode it at every send, on the cores it shares with
// the server (a tenth of the run's CPU). Answers are decoded in full, by
// grpc's own codec.
type encodedOnce struct {
	msg     proto.Message
	encoded []byte
}

func (e encodedOnce) Marshal(v any) (mem.BufferSlice, error) {
	if v == e.msg {
		return mem.BufferSlice{mem.SliceBuffer(e.encoded)}, nil
	}
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (encodedOnce) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

func (encodedOnce) Name() string { return "proto" }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(rawMsg), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMsg) = append((*v.(*rawMsg))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
