package com.example.ssm;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;

/** POSTs a password-grant token request and prints the status and body, or the stack trace. */
public class TokenClient {
    public static void main(String[] args) throws Exception {
        URL url = new URL(args[0]);
        int connectTimeout = args.length > 1 ? Integer.parseInt(args[1]) : 10000;
        try {
            HttpURLConnection c = (HttpURLConnection) url.openConnection();
            c.setConnectTimeout(connectTimeout);
            c.setReadTimeout(10000);
            c.setRequestMethod("POST");
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/x-www-form-urlencoded");
            try (OutputStream out = c.getOutputStream()) {
                out.write("grant_type=password".getBytes(StandardCharsets.UTF_8));
            }
            int status = c.getResponseCode();
            InputStream body = status >= 400 ? c.getErrorStream() : c.getInputStream();
            System.out.println(status + " " + c.getResponseMessage());
            if (body != null) {
                System.out.println(new String(body.readAllBytes(), StandardCharsets.UTF_8));
            }
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        }
    }
}
