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

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
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
	// Errors are not wrapped here: the caller knows which household it
	// sent, and the descriptions go into field violations as they are.
	std, err := s.choose(req.GetStandard(), h.GetReviewDate())
	if err != nil {
		return nil, toStatus(err)
	}
	a := s.assessments.Get().(*survey.Assessment)
	defer s.assessments.Put(a)
	if err := std.AssessInto(h, a); err != nil {
		return nil, toStatus(err)
	}
	return &rasoatv1.AssessResponse{Assessment: render(a, h, req.GetView())}, nil
}

// render builds the wire assessment in the view asked for.
func render(a *survey.Assessment, h *rasoatv1.Household, view rasoatv1.AssessmentView) *rasoatv1.Assessment {
	if view == rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC {
		return a.ProtoBasic(h)
	}
	return a.Proto(h)
}

// AssessStream answers each request batch with one response holding one
// result per household, in order. Bad households get violations in their
// result and the stream goes on; only a malformed batch (too big) or a
// fault of the server ends it.
func (s *Service) AssessStream(stream rasoatv1.ScoringService_AssessStreamServer) error {
	batches := s.receive(stream)
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
		results, err := s.assessBatch(in.req)
		if err != nil {
			return toStatus(fmt.Errorf("batch %d: %w", batch, err))
		}
		if err := stream.Send(&rasoatv1.AssessStreamResponse{Results: results}); err != nil {
			return err
		}
	}
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

// assessBatch scores a batch on up to GOMAXPROCS goroutines, each reusing
// one survey.Assessment; results keep the batch's order.
func (s *Service) assessBatch(req *rasoatv1.AssessStreamRequest) ([]*rasoatv1.AssessResult, error) {
	hs := req.GetHouseholds()
	// A named standard is looked up once per batch; an unknown one fails
	// every household of the batch, naming "standard".
	var named *survey.Standard
	var namedErr error
	if id := req.GetStandard(); id != "" {
		named, namedErr = s.reg.ByID(id)
	}
	results := make([]*rasoatv1.AssessResult, len(hs))
	var next atomic.Int64
	work := func() error {
		a := s.assessments.Get().(*survey.Assessment)
		defer s.assessments.Put(a)
		for {
			lo := int(next.Add(chunk)) - chunk
			if lo >= len(hs) {
				return nil
			}
			for i := lo; i < min(lo+chunk, len(hs)); i++ {
				r, err := s.assessResult(a, hs[i], named, namedErr, req.GetView())
				if err != nil {
					return fmt.Errorf("household %d: %w", i, err)
				}
				results[i] = r
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), (len(hs)+chunk-1)/chunk)
	if workers <= 1 {
		return results, work() // a panic here reaches the server's recovery
	}
	errs := make([]error, workers)
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
			errs[w] = work()
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// assessResult assesses one household of a batch into a, with named (or
// namedErr) the batch's standard when the request names one. Bad input
// yields violations in the result; an error is the server's fault.
func (s *Service) assessResult(a *survey.Assessment, h *rasoatv1.Household, named *survey.Standard, namedErr error, view rasoatv1.AssessmentView) (*rasoatv1.AssessResult, error) {
	res := &rasoatv1.AssessResult{HouseholdId: h.GetId()}
	err := namedErr
	switch {
	case err != nil:
	case h == nil:
		err = &requestError{field: "household", desc: "required"}
	case named != nil:
		err = named.AssessInto(h, a)
	default:
		var std *survey.Standard
		if std, err = s.choose("", h.GetReviewDate()); err == nil {
			err = std.AssessInto(h, a)
		}
	}
	if err == nil {
		res.Outcome = &rasoatv1.AssessResult_Assessment{Assessment: render(a, h, view)}
		return res, nil
	}
	fv, ok := fieldViolations(err)
	if !ok {
		return nil, err
	}
	res.Outcome = &rasoatv1.AssessResult_Violations{Violations: &rasoatv1.Violations{Violations: fv}}
	return res, nil
}

// choose picks the standard named id, or the one in force on reviewDate.
func (s *Service) choose(id, reviewDate string) (*survey.Standard, error) {
	std, err := s.reg.Choose(id, reviewDate)
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
