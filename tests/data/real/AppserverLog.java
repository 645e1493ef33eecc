// Writes a Manager appserver log with the real jboss-logmanager (the logging
// library of WildFly) and real JDK exceptions. Logger names, thread names and
// message texts are given, as `logger -t` gives a syslog tag; the layout,
// levels, time stamps and stack traces are the library's and the JDK's.
// Usage: java -cp jboss-logmanager.jar:. AppserverLog PATTERN FILE TARGET_URL
import java.io.FileOutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import org.jboss.logmanager.Level;
import org.jboss.logmanager.Logger;
import org.jboss.logmanager.formatters.PatternFormatter;
import org.jboss.logmanager.handlers.FileHandler;

public class AppserverLog {
    public static void main(String[] args) throws Exception {
        PatternFormatter formatter = new PatternFormatter(args[0]);
        FileHandler handler = new FileHandler(formatter);
        handler.setFileName(args[1]);
        handler.setAppend(false);
        Logger root = Logger.getLogger("");
        root.addHandler(handler);
        root.setLevel(Level.INFO);
        String target = args[2];

        inThread("Controller Boot Thread", () -> {
            Logger.getLogger("org.jboss.as.server").info("WFLYSRV0010: Deployed \"vmanage.war\" (runtime-name : \"vmanage.war\")");
            Logger.getLogger("org.jboss.as").info("WFLYSRV0025: WildFly Full started in 41210ms - Started 1391 of 1627 services");
        });
        inThread("default task-24", () -> {
            Logger.getLogger("com.viptela.vmanage.server.license.SmartLicensingIntegrationManager")
                .info("Smart licensing credentials update requested for user admin");
            try {
                HttpURLConnection c = (HttpURLConnection) new URL(target).openConnection();
                c.setConnectTimeout(3000);
                c.setRequestMethod("POST");
                c.getResponseCode();
            } catch (Exception e) {
                Logger.getLogger("com.viptela.vmanage.server.license.SmartLicensingUtil")
                    .log(Level.ERROR, "Exception while getting token from " + target, e);
                Logger.getLogger("com.viptela.vmanage.server.license.SmartLicensingIntegrationRestfulResource")
                    .log(Level.ERROR, "Failed to authenticate Smart Account credentials.: " + e);
            }
        });
        handler.close();
    }

    static void inThread(String name, Runnable body) throws InterruptedException {
        Thread t = new Thread(body, name);
        t.start();
        t.join();
    }
}
