package codedeploy

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

type fakeGroups struct {
	mu     sync.Mutex
	copies [][2]string
	gone   []string
}

func (f *fakeGroups) HasGroup(string) bool { return true }
func (f *fakeGroups) CopyGroup(src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.copies = append(f.copies, [2]string{src, dst})
	return nil
}
func (f *fakeGroups) DeleteGroup(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = append(f.gone, name)
}

type published struct{ topic, subject, message string }

type fakeTopics struct{ ch chan published }

func (f fakeTopics) Publish(topic, subject, message string, _ map[string]map[string]string) (string, error) {
	f.ch <- published{topic, subject, message}
	return "m-1", nil
}

// A blue/green copy sends its triggers in order, each with CodeDeploy's message, and copies the
// group before the first.
func TestTriggersOfABlueGreenCopy(t *testing.T) {
	groups, topics := &fakeGroups{}, fakeTopics{make(chan published, 10)}
	s := New(Config{Region: "eu-west-1", Account: "123456789012", Groups: groups, Topics: topics})
	defer s.Close()
	ctx := context.Background()
	if _, err := s.createApplication(ctx, nil, &createApplicationInput{ApplicationName: "shop"}); err != nil {
		t.Fatal(err)
	}
	var in createDeploymentGroupInput
	if err := json.Unmarshal([]byte(`{"applicationName":"shop","deploymentGroupName":"prod","serviceRoleArn":"arn:aws:iam::123456789012:role/cd",
		"autoScalingGroups":["web"],"deploymentStyle":{"deploymentType":"BLUE_GREEN","deploymentOption":"WITH_TRAFFIC_CONTROL"},
		"blueGreenDeploymentConfiguration":{"greenFleetProvisioningOption":{"action":"COPY_AUTO_SCALING_GROUP"},
		  "terminateBlueInstancesOnDeploymentSuccess":{"action":"TERMINATE","terminationWaitTimeInMinutes":0}},
		"loadBalancerInfo":{"targetGroupInfoList":[{"name":"web"}]},
		"triggerConfigurations":[{"triggerName":"keeper","triggerTargetArn":"arn:aws:sns:eu-west-1:123456789012:deploys",
		  "triggerEvents":["DeploymentStart","DeploymentReady","DeploymentSuccess","DeploymentFailure"]}]}`), &in); err != nil {
		t.Fatal(err)
	}
	if _, err := s.createDeploymentGroup(ctx, nil, &in); err != nil {
		t.Fatal(err)
	}
	out, perr := s.createDeployment(ctx, nil, &createDeploymentInput{ApplicationName: "shop", DeploymentGroupName: "prod", Revision: json.RawMessage(`{"revisionType":"S3"}`)})
	if perr != nil {
		t.Fatal(perr)
	}
	id := out.DeploymentID
	for _, want := range []string{"CREATED", "READY", "SUCCEEDED"} {
		var p published
		select {
		case p = <-topics.ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s trigger", want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(p.message), &m); err != nil {
			t.Fatalf("message %q: %v", p.message, err)
		}
		if m["status"] != want || m["deploymentId"] != id || m["deploymentGroupName"] != "prod" || m["applicationName"] != "shop" ||
			m["eventTriggerName"] != "keeper" || m["region"] != "eu-west-1" || m["accountId"] != "123456789012" {
			t.Errorf("message %s", p.message)
		}
		if _, ok := m["completeTime"]; !ok || (want == "SUCCEEDED") != (m["completeTime"] != nil) {
			t.Errorf("completeTime in %s: %v", want, m["completeTime"])
		}
		if p.subject != want+": AWS CodeDeploy "+id+" in eu-west-1 to shop" || p.topic != "arn:aws:sns:eu-west-1:123456789012:deploys" {
			t.Errorf("subject %q, topic %q", p.subject, p.topic)
		}
		if want == "CREATED" {
			groups.mu.Lock()
			if len(groups.copies) != 1 || groups.copies[0] != [2]string{"web", "CodeDeploy_prod_" + id} {
				t.Errorf("copies before DeploymentStart: %v", groups.copies)
			}
			groups.mu.Unlock()
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		groups.mu.Lock()
		gone := len(groups.gone) == 1 && groups.gone[0] == "web"
		groups.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the original was not terminated")
		}
	}
}
