// Package scoring serves the survey engine over gRPC: rasoat.v1.ScoringService
// assesses households (chấm điểm, phân loại hộ) against a poverty standard and
// stores nothing.
package scoring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// MaxBatch is the most households one AssessStream request may carry. One
// response answers a whole batch, and an assessment with its reasons in
// words is about three times the size of its household (a family of four:
// 0.5 KB in, 1.7 KB out). The cap keeps a request well under the server's
// 16 MiB receive limit and bounds the memory one stream can pin. A client
// sending more than about 2,000 households a batch must raise its receive
// limit (grpc-go's default is 4 MiB); 1,000 a batch is plenty for speed.
const MaxBatch = 10_000

// Service implements rasoatv1.ScoringServiceServer over a registry of
// standards. It is safe for concurrent use.
type Service struct {
	rasoatv1.UnimplementedScoringServiceServer

	reg *survey.Registry
	log *slog.Logger
	// assessments recycles survey.Assessment scratch memory across calls:
	// the engine allocates nothing per household once one has grown.
	assessments sync.Pool
}

var _ rasoatv1.ScoringServiceServer = (*Service)(nil)

// New returns a Service assessing against reg; a nil logger discards.
func New(reg *survey.Registry, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{reg: reg, log: logger}
	s.assessments.New = func() any { return new(survey.Assessment) }
	return s
}

// Assess classifies one household.
func (s *Service) Assess(_ context.Context, req *rasoatv1.AssessRequest) (*rasoatv1.AssessResponse, error) {
	h := req.GetHousehold()
	if h == nil {
		return nil, toStatus(&requestError{field: "household", desc: "required"})
	}
	if err := checkStandard(req.GetStandard()); err != nil {
		return nil, toStatus(err)
	}
	// Errors are not wrapped here: the caller knows which household it
	// sent, and the descriptions go into field violations as they are.
	std, err := s.choose(req.GetStandard(), h.GetReviewDate(), req.GetRound())
	if err != nil {
		return nil, toStatus(err)
	}
	a := s.assessments.Get().(*survey.Assessment)
	defer s.assessments.Put(a)
	if err := std.AssessInto(h, a); err != nil {
		return nil, toStatus(err)
	}
	if req.GetView() == rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC {
		return &rasoatv1.AssessResponse{Assessment: a.ProtoBasic(h)}, nil
	}
	return &rasoatv1.AssessResponse{Assessment: a.Proto(h)}, nil
}

// AssessStream answers each request batch with one response holding one
// result per household, in order. Bad households get violations in their
// result and the stream goes on; only a malformed batch (too big) or a
// fault of the server ends it.
func (s *Service) AssessStream(stream rasoatv1.ScoringService_AssessStreamServer) error {
	batches := s.receive(stream)
	var mem streamMemory
	for batch := 0; ; batch++ {
		in, ok := <-batches
		if !ok {
			return toStatus(stream.Context().Err())
		}
		if errors.Is(in.err, io.EOF) {
			return nil
		}
		if in.err != nil {
			return toStatus(in.err) // the transport's errors are statuses already
		}
		if n := len(in.req.GetHouseholds()); n > MaxBatch {
			return toStatus(fmt.Errorf("batch %d: %w", batch, &requestError{
				field: "households",
				desc:  fmt.Sprintf("at most %d households per request, got %d: send them as several requests on the same stream", MaxBatch, n),
			}))
		}
		if err := checkStandard(in.req.GetStandard()); err != nil {
			return toStatus(fmt.Errorf("batch %d: %w", batch, err))
		}
		if err := s.answer(stream, &mem, batch, in.req); err != nil {
			return err
		}
	}
}

// streamMemory is what one stream reuses from batch to batch, so that once
// it has grown, scoring and encoding a batch allocate almost nothing. It
// holds about twice the stream's largest answer until the stream ends. (A
// sync.Pool would lose it at every garbage collection, which a bulk
// stream's client and server trigger many times a second.)
type streamMemory struct {
	workers []*scratch
	out     []byte // the response's results, encoded
}

// scratch is the memory one goroutine scoring a batch reuses.
type scratch struct {
	a   survey.Assessment
	enc []byte // one assessment's wire bytes
	out []byte // the encoded results of the chunks this goroutine did
}

// answer scores a batch and sends its response. The results go out already
// encoded, as the response's unknown fields: proto.Marshal copies those
// verbatim, and the receiver reads them as the results field they are.
// Building an Assessment message per household and marshalling it cost
// more than the scoring itself.
func (s *Service) answer(stream rasoatv1.ScoringService_AssessStreamServer, mem *streamMemory, batch int, req *rasoatv1.AssessStreamRequest) error {
	var err error
	if mem.out, err = s.assessBatch(mem.out[:0], &mem.workers, req); err != nil {
		return toStatus(fmt.Errorf("batch %d: %w", batch, err))
	}
	resp := new(rasoatv1.AssessStreamResponse)
	resp.ProtoReflect().SetUnknown(mem.out)
	// Send returns once it has marshalled resp (a copy): mem.out is free.
	return stream.Send(resp) // the transport's errors are statuses already
}

type received struct {
	req *rasoatv1.AssessStreamRequest
	err error
}

// receive reads (and decodes) the next batch while the current one is
// scored and sent; decoding is a fifth of the work. gRPC allows one
// goroutine receiving while another sends. The reader ends with the stream,
// on a receive error or when the stream's context is done, and then closes
// the channel so that the handler cannot wait for it in vain.
func (s *Service) receive(stream rasoatv1.ScoringService_AssessStreamServer) <-chan received {
	out := make(chan received)
	ctx := stream.Context()
	go func() {
		defer close(out)
		for {
			var in received
			func() {
				defer func() {
					if p := recover(); p != nil {
						s.log.Error("panic receiving a batch", "panic", p, "stack", string(debug.Stack()))
						in.err = fmt.Errorf("panic receiving a batch: %v", p)
					}
				}()
				in.req, in.err = stream.Recv()
			}()
			select {
			case out <- in:
			case <-ctx.Done():
				return
			}
			if in.err != nil {
				return
			}
		}
	}()
	return out
}

// chunk is how many households a worker claims at a time: big enough that
// claiming costs nothing, small enough to spread a batch over the cores.
const chunk = 64

// Field numbers of rasoat.v1.AssessStreamResponse and AssessResult.
const (
	responseResults  = 1
	resultID         = 1
	resultAssessment = 2
)

// assessBatch scores a batch on up to GOMAXPROCS goroutines, each with one
// of workers (added as needed), and appends to b the results field of the
// response, one result per household in the batch's order, byte for byte
// what proto.Marshal writes for AssessStreamResponse{Results: ...}.
func (s *Service) assessBatch(b []byte, workers *[]*scratch, req *rasoatv1.AssessStreamRequest) ([]byte, error) {
	hs := req.GetHouseholds()
	// A named standard is looked up once per batch; an unknown one fails
	// every household of the batch, naming "standard".
	var named *survey.Standard
	var namedErr error
	if id := req.GetStandard(); id != "" {
		named, namedErr = s.reg.ByID(id)
	}
	// Each worker encodes the chunks it claims into its own scratch; spans
	// say where each chunk's bytes are, to put them together in order.
	type span struct {
		sc     *scratch
		lo, hi int
	}
	spans := make([]span, (len(hs)+chunk-1)/chunk)
	n := max(min(runtime.GOMAXPROCS(0), len(spans)), 1)
	for len(*workers) < n {
		*workers = append(*workers, new(scratch))
	}
	scratches := (*workers)[:n]
	for _, sc := range scratches {
		sc.out = sc.out[:0]
	}
	var next atomic.Int64
	work := func(sc *scratch) error {
		for {
			c := int(next.Add(1)) - 1
			if c >= len(spans) {
				return nil
			}
			lo := len(sc.out)
			for i := c * chunk; i < min((c+1)*chunk, len(hs)); i++ {
				var err error
				if sc.out, err = s.appendResult(sc.out, sc, hs[i], named, namedErr, req.GetView(), req.GetRound()); err != nil {
					return fmt.Errorf("household %d: %w", i, err)
				}
			}
			spans[c] = span{sc, lo, len(sc.out)}
		}
	}
	var err error
	if n == 1 {
		err = work(scratches[0]) // a panic here reaches the server's recovery
	} else {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for w := range errs {
			wg.Go(func() {
				// The server's recovery cannot see this goroutine's panics.
				defer func() {
					if p := recover(); p != nil {
						s.log.Error("panic assessing a batch", "panic", p, "stack", string(debug.Stack()))
						errs[w] = fmt.Errorf("panic assessing a batch: %v", p)
					}
				}()
				errs[w] = work(scratches[w])
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	if err != nil {
		return b, err
	}
	for _, sp := range spans {
		b = append(b, sp.sc.out[sp.lo:sp.hi]...)
	}
	return b, nil
}

// appendResult assesses one household of a batch, with named (or
// namedErr) the batch's standard when the request names one, and appends
// its AssessResult as a results field. Bad input yields violations in the
// result; an error is the server's fault.
func (s *Service) appendResult(b []byte, sc *scratch, h *rasoatv1.Household, named *survey.Standard, namedErr error, view rasoatv1.AssessmentView, round rasoatv1.ReviewRound) ([]byte, error) {
	err := namedErr
	switch {
	case err != nil:
	case h == nil:
		err = &requestError{field: "household", desc: "required"}
	case named != nil:
		err = named.AssessInto(h, &sc.a)
	default:
		var std *survey.Standard
		if std, err = s.choose("", h.GetReviewDate(), round); err == nil {
			err = std.AssessInto(h, &sc.a)
		}
	}
	if err != nil {
		// Rare: the message and proto.Marshal are good enough.
		fv, ok := fieldViolations(err)
		if !ok {
			return b, err
		}
		res := &rasoatv1.AssessResult{
			HouseholdId: h.GetId(),
			Outcome:     &rasoatv1.AssessResult_Violations{Violations: &rasoatv1.Violations{Violations: fv}},
		}
		if sc.enc, err = (proto.MarshalOptions{}).MarshalAppend(sc.enc[:0], res); err != nil {
			return b, err
		}
		b = protowire.AppendTag(b, responseResults, protowire.BytesType)
		return protowire.AppendBytes(b, sc.enc), nil
	}
	if view == rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC {
		sc.enc = sc.a.AppendProtoBasic(sc.enc[:0], h)
	} else {
		sc.enc = sc.a.AppendProto(sc.enc[:0], h)
	}
	// The result is the household id (left out when empty, as proto3 does)
	// and the assessment; its size goes first.
	id := h.GetId()
	size := protowire.SizeTag(resultAssessment) + protowire.SizeBytes(len(sc.enc))
	if id != "" {
		size += protowire.SizeTag(resultID) + protowire.SizeBytes(len(id))
	}
	b = protowire.AppendTag(b, responseResults, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if id != "" {
		b = protowire.AppendTag(b, resultID, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	b = protowire.AppendTag(b, resultAssessment, protowire.BytesType)
	return protowire.AppendBytes(b, sc.enc), nil
}

// checkStandard refuses a standard id longer than any string a household
// may hold (survey.MaxTextBytes): no registry has one, and the violation
// for an unknown id quotes it, once for every household of a batch.
// Members, strings and lists within a household are bounded by the survey.
func checkStandard(id string) error {
	if len(id) > survey.MaxTextBytes {
		return &requestError{field: "standard", desc: fmt.Sprintf("at most %d bytes, got %d", survey.MaxTextBytes, len(id))}
	}
	return nil
}

// choose picks the standard named id, or the one the round's kind and
// reviewDate choose (workflow.Standard).
func (s *Service) choose(id, reviewDate string, round rasoatv1.ReviewRound) (*survey.Standard, error) {
	var std *survey.Standard
	var err error
	if id != "" {
		std, err = s.reg.Choose(id, reviewDate)
	} else {
		std, err = workflow.Standard(s.reg, round == rasoatv1.ReviewRound_REVIEW_ROUND_REGULAR, reviewDate)
	}
	if errors.Is(err, survey.ErrNoStandard) {
		return nil, fmt.Errorf("review date %s: %w; known standards cover review dates %s", reviewDate, err, s.coverage())
	}
	return std, err
}

// coverage lists the review dates each standard decides, for messages.
func (s *Service) coverage() string {
	var b strings.Builder
	for i, std := range s.reg.Standards() {
		if i > 0 {
			b.WriteString(", ")
		}
		from, to := std.ReviewDates()
		fmt.Fprintf(&b, "%s to %s (%s)", from, to, std.ID)
	}
	return b.String()
}

// ListStandards names the standards this server knows, oldest first.
func (s *Service) ListStandards(context.Context, *rasoatv1.ListStandardsRequest) (*rasoatv1.ListStandardsResponse, error) {
	stds := s.reg.Standards()
	out := &rasoatv1.ListStandardsResponse{Standards: make([]*rasoatv1.StandardInfo, len(stds))}
	for i, std := range stds {
		from, to := std.ReviewDates()
		info := &rasoatv1.StandardInfo{
			Id:          std.ID,
			Name:        std.Name,
			Source:      std.Source,
			ValidFrom:   from,
			ValidTo:     to,
			Provisional: std.AnyProvisional(),
		}
		for _, ind := range std.Indicators() {
			info.Indicators = append(info.Indicators, ind.ID)
		}
		out.Standards[i] = info
	}
	return out, nil
}
