// Small control tool for the local RocketMQ used by deploy/services.sh.
//
// It does, in ONE JVM, what would otherwise take many `mqadmin` runs
// (each MQAdminStartup run costs 5-8 s, mostly the client's shutdown):
//
//   ready    NAMESRV CLUSTER TIMEOUT_S BROKER TOPIC...
//            wait for a master of CLUSTER to be registered with the name server,
//            create each missing TOPIC on every master (4 read / 4 write queues),
//            then wait until the name server serves a route for every TOPIC.
//            BROKER (host:port) is nudged to register at once when it has not
//            after ~2 s (its own retry comes only every 10 s).
//   check    NAMESRV CLUSTER TOPIC...            exit 0 when a master is registered
//            and every TOPIC has a route (no changes made).
//   selftest NAMESRV TOPIC [CLUSTER]             send a message and consume it, then
//            send a message with a 2 s delivery delay (timer wheel) and check it
//            arrives no sooner than ~2 s.
//
// Compiled by services.sh with javac against the RocketMQ jars it fetched; it ends
// with System.exit so the slow client shutdown is skipped.
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.body.ClusterInfo;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.apache.rocketmq.remoting.protocol.route.TopicRouteData;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

public class RmqCtl {
    private static final int QUEUES = 4;

    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (Throwable t) {
            System.err.println("rmqctl: " + t);
            rc = 1;
        }
        System.out.flush();
        System.err.flush();
        // Skip the remoting client's slow, orderly shutdown.
        Runtime.getRuntime().halt(rc);
    }

    private static int run(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: RmqCtl ready|check|selftest NAMESRV ...");
            return 2;
        }
        String cmd = args[0];
        String namesrv = args[1];
        switch (cmd) {
            case "ready":
                return ready(namesrv, args[2], Integer.parseInt(args[3]), args[4], tail(args, 5));
            case "check":
                return check(namesrv, args[2], tail(args, 3));
            case "selftest":
                return selftest(namesrv, args[2], args.length > 3 ? args[3] : "DefaultCluster");
            default:
                System.err.println("rmqctl: unknown command " + cmd);
                return 2;
        }
    }

    private static List<String> tail(String[] a, int from) {
        List<String> l = new ArrayList<>();
        for (int i = from; i < a.length; i++) {
            if (!a[i].isEmpty()) {
                l.add(a[i]);
            }
        }
        return l;
    }

    private static DefaultMQAdminExt admin(String namesrv) throws Exception {
        DefaultMQAdminExt a = new DefaultMQAdminExt(3000);
        a.setNamesrvAddr(namesrv);
        a.setInstanceName("rmqctl-" + ProcessHandle.current().pid());
        a.start();
        return a;
    }

    /** Master addresses of the cluster as the name server sees them (empty if none). */
    private static List<String> masters(DefaultMQAdminExt a, String cluster) {
        List<String> out = new ArrayList<>();
        try {
            ClusterInfo ci = a.examineBrokerClusterInfo();
            if (ci == null || ci.getClusterAddrTable() == null || ci.getClusterAddrTable().get(cluster) == null) {
                return out;
            }
            for (String bn : ci.getClusterAddrTable().get(cluster)) {
                BrokerData bd = ci.getBrokerAddrTable().get(bn);
                if (bd == null) {
                    continue;
                }
                String addr = bd.getBrokerAddrs().get(MixAll.MASTER_ID);
                if (addr != null) {
                    out.add(addr);
                }
            }
        } catch (Exception e) {
            // not yet
        }
        return out;
    }

    private static boolean hasRoute(DefaultMQAdminExt a, String topic) {
        try {
            TopicRouteData r = a.examineTopicRouteInfo(topic);
            return r != null && r.getQueueDatas() != null && !r.getQueueDatas().isEmpty()
                && r.getBrokerDatas() != null && !r.getBrokerDatas().isEmpty();
        } catch (Exception e) {
            return false;
        }
    }

    private static int ready(String namesrv, String cluster, int timeoutS, String broker, List<String> topics)
        throws Exception {
        long t0 = System.currentTimeMillis();
        long deadline = t0 + timeoutS * 1000L;
        long nextNudge = t0 + 2000;
        DefaultMQAdminExt a = admin(namesrv);
        List<String> m = masters(a, cluster);
        while (m.isEmpty()) {
            if (System.currentTimeMillis() > deadline) {
                System.err.println("rmqctl: no master of cluster " + cluster + " registered with " + namesrv
                    + " after " + timeoutS + " s");
                return 1;
            }
            if (System.currentTimeMillis() > nextNudge) {
                // The broker registers once at boot (which can race with its own name
                // server connection) and then only every registerNameServerPeriod.
                // Re-setting brokerPermission to its default (6 = read+write) makes it
                // register immediately.
                nextNudge = System.currentTimeMillis() + 5000;
                try {
                    Properties p = new Properties();
                    p.setProperty("brokerPermission", "6");
                    a.updateBrokerConfig(broker, p);
                    System.out.println("rmqctl: asked broker " + broker + " to register now");
                } catch (Exception e) {
                    System.out.println("rmqctl: could not nudge broker " + broker + ": " + e);
                }
            }
            Thread.sleep(250);
            m = masters(a, cluster);
        }
        System.out.printf("rmqctl: broker %s registered with name server (%.1f s)%n", m,
            (System.currentTimeMillis() - t0) / 1000.0);

        for (String topic : topics) {
            if (hasRoute(a, topic)) {
                continue;
            }
            TopicConfig tc = new TopicConfig(topic, QUEUES, QUEUES);
            for (String addr : m) {
                a.createAndUpdateTopicConfig(addr, tc);
            }
            System.out.println("rmqctl: created topic " + topic + " (" + QUEUES + "r/" + QUEUES + "w) on " + m);
        }
        long tr = System.currentTimeMillis();
        for (String topic : topics) {
            while (!hasRoute(a, topic)) {
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("rmqctl: no route for topic " + topic + " after " + timeoutS + " s");
                    return 1;
                }
                Thread.sleep(200);
            }
        }
        System.out.printf("rmqctl: routes present for %s (waited %.1f s for them)%n", topics,
            (System.currentTimeMillis() - tr) / 1000.0);
        return 0;
    }

    private static int check(String namesrv, String cluster, List<String> topics) throws Exception {
        DefaultMQAdminExt a = admin(namesrv);
        List<String> m = masters(a, cluster);
        if (m.isEmpty()) {
            System.err.println("rmqctl: no master of cluster " + cluster + " registered");
            return 1;
        }
        List<String> missing = new ArrayList<>();
        for (String topic : topics) {
            if (!hasRoute(a, topic)) {
                missing.add(topic);
            }
        }
        if (!missing.isEmpty()) {
            System.err.println("rmqctl: no route for " + missing);
            return 1;
        }
        return 0;
    }

    private static int selftest(String namesrv, String topic, String cluster) throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        String group = "seckill_selftest_" + run;
        DefaultMQProducer p = new DefaultMQProducer("seckill_selftest_producer");
        p.setNamesrvAddr(namesrv);
        p.setInstanceName("rmqctl-p-" + run);
        p.setSendMsgTimeout(5000);
        p.start();

        DefaultLitePullConsumer c = new DefaultLitePullConsumer(group);
        c.setNamesrvAddr(namesrv);
        c.setInstanceName("rmqctl-c-" + run);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET);
        c.setPollTimeoutMillis(500);
        c.subscribe(topic, "*");
        c.start();

        // A brand-new group: the broker answers QUERY_CONSUMER_OFFSET for it (the path
        // that touches the commit log's mapped memory), then we must see our message.
        String keyNow = "now-" + run;
        Message now = new Message(topic, "selftest", keyNow, ("hello " + run).getBytes());
        long ts = System.currentTimeMillis();
        SendResult r1 = p.send(now);
        if (r1.getSendStatus() != SendStatus.SEND_OK) {
            System.err.println("rmqctl: send failed: " + r1);
            return 1;
        }
        if (!await(c, keyNow, 20000)) {
            System.err.println("rmqctl: sent " + r1.getMsgId() + " but did not consume it within 20 s");
            return 1;
        }
        System.out.printf("rmqctl: sent+consumed a message on %s in %.1f s (queue %d offset %d)%n", topic,
            (System.currentTimeMillis() - ts) / 1000.0, r1.getMessageQueue().getQueueId(), r1.getQueueOffset());

        String keyLater = "later-" + run;
        Message later = new Message(topic, "selftest", keyLater, ("later " + run).getBytes());
        later.setDelayTimeMs(2000); // arbitrary delay => timer wheel (timerWheelEnable=true)
        long td = System.currentTimeMillis();
        SendResult r2 = p.send(later);
        if (r2.getSendStatus() != SendStatus.SEND_OK) {
            System.err.println("rmqctl: delayed send failed: " + r2);
            return 1;
        }
        if (!await(c, keyLater, 30000)) {
            System.err.println("rmqctl: delayed message " + r2.getMsgId() + " not consumed within 30 s");
            return 1;
        }
        long took = System.currentTimeMillis() - td;
        if (took < 1500) {
            System.err.println("rmqctl: delayed message arrived after only " + took + " ms (timer wheel off?)");
            return 1;
        }
        System.out.printf("rmqctl: 2 s timer message consumed after %.1f s%n", took / 1000.0);
        try {
            DefaultMQAdminExt a = admin(namesrv);
            for (String addr : masters(a, cluster)) {
                a.deleteSubscriptionGroup(addr, group, true);
            }
        } catch (Exception e) {
            // cosmetic only
        }
        return 0;
    }

    private static boolean await(DefaultLitePullConsumer c, String key, long timeoutMs) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            for (MessageExt m : c.poll()) {
                if (key.equals(m.getKeys())) {
                    return true;
                }
            }
        }
        return false;
    }
}
