package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/vkinfo"
)

func newDevicesCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the WebGPU adapters and what Vulkan says about them (driver, memory heaps)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDevices(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// deviceReport is one adapter with its Vulkan facts, when Vulkan knows it.
type deviceReport struct {
	gpu.AdapterInfo
	Vulkan *vkinfo.Device `json:"vulkan,omitempty"`
}

func runDevices(w io.Writer, asJSON bool) error {
	adapters, err := gpu.Adapters()
	if err != nil && !errors.Is(err, gpu.ErrNoAdapter) {
		return err
	}
	vk, vkErr := vkinfo.Devices()
	var reports []deviceReport
	for _, a := range adapters {
		r := deviceReport{AdapterInfo: a}
		for i := range vk {
			if vk[i].VendorID == a.VendorID && vk[i].DeviceID == a.DeviceID {
				r.Vulkan = &vk[i]
				break
			}
		}
		reports = append(reports, r)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	if len(reports) == 0 {
		fmt.Fprintln(w, "no WebGPU adapter found (install a Vulkan driver; on a machine without a GPU, Mesa's lavapipe: apt-get install mesa-vulkan-drivers)")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tname\tbackend\ttype\tdriver\tdevice memory\tstorage binding\ttimestamps")
	for _, r := range reports {
		mem, driver := "?", r.Driver
		if r.Vulkan != nil {
			mem = fmt.Sprintf("%.2f GiB", float64(r.Vulkan.DeviceLocalBytes())/(1<<30))
			if r.Vulkan.DriverName != "" {
				driver = r.Vulkan.DriverName + " " + r.Vulkan.DriverInfo
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.Index, r.Name, r.Backend, r.Type, driver, mem,
			humanBytes(int64(r.Limits.MaxStorageBufferBindingSize)), r.Timestamps)
	}
	tw.Flush()
	if vkErr != nil {
		fmt.Fprintf(w, "vulkan: %v\n", vkErr)
	}
	return nil
}
