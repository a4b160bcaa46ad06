package gateway_test

import (
	"os"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/kitex/pkg/klog"
)

func TestMain(m *testing.M) {
	hlog.SetLevel(hlog.LevelWarn)
	klog.SetLevel(klog.LevelError)
	os.Exit(m.Run())
}
