// Probe is the readiness check of scripts/kafka.sh: it asks the broker at
// args[0] to describe its cluster until it lists at least one (unfenced)
// broker or args[1] milliseconds have passed. Exit 0 when ready, 1 otherwise.
// It reports progress on stderr every 5 s.
// It runs in Java's source-file mode against the broker's own kafka-clients jar.

import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

public class Probe {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Long.parseLong(args[1]));
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        String last = "no answer";
        long start = System.nanoTime();
        long nextReport = start + TimeUnit.SECONDS.toNanos(5);
        try (Admin admin = Admin.create(p)) {
            while (System.nanoTime() < deadline) {
                if (System.nanoTime() >= nextReport) {
                    System.err.println("kafka.sh: waiting for the broker to register ("
                            + TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start) + "s more): " + last);
                    nextReport += TimeUnit.SECONDS.toNanos(5);
                }
                try {
                    int n = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000))
                            .nodes().get(4, TimeUnit.SECONDS).size();
                    if (n > 0) {
                        System.out.println("ready: " + n + " broker(s) at " + bootstrap);
                        return;
                    }
                    last = "cluster has no unfenced broker yet";
                } catch (Exception e) {
                    last = e.getCause() != null ? e.getCause().toString() : e.toString();
                }
                Thread.sleep(250);
            }
        }
        System.out.println("not ready: " + last);
        System.exit(1);
    }
}
