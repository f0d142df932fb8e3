// kstatus prints the verdict of sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute
// (what Flux and kpt use to read health) for Kubernetes objects given as JSON.
//
//	kstatus < objects.json
//
// Input: one object, a list ({"items": [...]}), or a JSON array. Output: one JSON
// line per object, {"name": ..., "status": ..., "message": ...}. Used by
// tests/integration/test_kstatus.py; built by hack/build-kstatus.sh.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// objects splits the input into single objects (raw JSON each).
func objects(data []byte) ([]json.RawMessage, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err == nil {
		return arr, nil
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	if list.Items != nil {
		return list.Items, nil
	}
	return []json.RawMessage{data}, nil
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	objs, err := objects(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: input is not JSON objects:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, o := range objs {
		// UnmarshalJSON keeps integers as int64, as the API machinery reads them.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(o); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: not a Kubernetes object:", err)
			os.Exit(2)
		}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", u.GetName(), err)
			os.Exit(1)
		}
		if err := enc.Encode(verdict{Name: u.GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
			os.Exit(1)
		}
	}
}
