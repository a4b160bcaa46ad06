// Package telemetry sets up OpenTelemetry tracing and carries trace context across the
// platform's hops: HTTP headers at the gateway, a string map in the kitex request, the
// same map in the queued order message.
package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Config chooses where spans go.
type Config struct {
	// Exporter is "" or "none" (spans are not recorded; context still propagates),
	// "stdout", or "otlp" (OTLP over HTTP to Endpoint, e.g. 127.0.0.1:4318).
	Exporter string  `yaml:"exporter"`
	Endpoint string  `yaml:"endpoint"`
	Sample   float64 `yaml:"sample"` // share of traces kept, 0 < s <= 1 (default 1)
}

// Setup installs the global tracer provider and the W3C trace-context propagator. The
// returned function flushes and stops the exporter.
func Setup(ctx context.Context, service string, cfg Config) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	var exp sdktrace.SpanExporter
	var err error
	switch cfg.Exporter {
	case "", "none":
		return func(context.Context) error { return nil }, nil
	case "stdout":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
	case "otlp":
		opts := []otlptracehttp.Option{otlptracehttp.WithInsecure()}
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("tracing exporter %q: want none, stdout or otlp", cfg.Exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %w", err)
	}
	sample := cfg.Sample
	if sample <= 0 || sample > 1 {
		sample = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sample))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Tracer is the platform's tracer (from the global provider, so tests may install a
// recorder).
func Tracer() trace.Tracer { return otel.Tracer("github.com/seckill/flashsale") }

// Inject writes ctx's span context into a string map (a kitex request's or a queued
// message's trace field).
func Inject(ctx context.Context, m map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m))
	return m
}

// Extract returns ctx with the span context carried in m.
func Extract(ctx context.Context, m map[string]string) context.Context {
	if len(m) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(m))
}
