// SPDX-License-Identifier: Apache-2.0
// Java 17 SunPKCS11 against libp11kms.so: login through the PKCS11
// KeyStore, AES key generation on the token, AES/GCM/NoPadding and
// AES/CBC/PKCS5Padding round trips (one-shot and multi-part) checked against
// SunJCE, the AES key wrap transformations SunPKCS11 maps, and a token key
// stored under an alias and found again by a new JVM; HMAC against SunJCE
// when SunPKCS11 offers it for the module.
//
// Usage: java P11Consumer CONFIG PIN WORKDIR create|reload
// (SunPKCS11 ignores PIN when the token does not require a login.)
// Prints "ok:", "FAIL:", "SKIP:" and "MAP:" lines; exits 1 if any check failed.
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.NoSuchAlgorithmException;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Security;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class P11Consumer {
    static int failures = 0;
    static final SecureRandom RNG = new SecureRandom();
    static final String ALIAS = "java-tde-master";

    static void ok(String s) { System.out.println("   ok: " + s); }

    static void fail(String s, Throwable t) {
        failures++;
        System.out.println("FAIL: " + s + (t == null ? "" : ": " + t));
        if (t != null) t.printStackTrace(System.out);
    }

    static void check(boolean cond, String what) {
        if (cond) ok(what); else fail(what, null);
    }

    static byte[] rnd(int n) { byte[] b = new byte[n]; RNG.nextBytes(b); return b; }

    /** Encrypt in parts of 1000 bytes through update(), then doFinal(). */
    static byte[] parts(Cipher c, byte[] data) throws GeneralSecurityException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < data.length; i += 1000) {
            byte[] p = c.update(data, i, Math.min(1000, data.length - i));
            if (p != null) out.writeBytes(p);
        }
        out.writeBytes(c.doFinal());
        return out.toByteArray();
    }

    public static void main(String[] args) throws Exception {
        String cfg = args[0];
        char[] pin = args[1].toCharArray();
        Path work = Path.of(args[2]);
        boolean reload = args[3].equals("reload");

        Provider p = Security.getProvider("SunPKCS11").configure(cfg);
        Security.addProvider(p);
        System.out.println("-- provider " + p.getName() + ": " + p.getInfo());
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, pin);
        ok("KeyStore PKCS11 loaded (C_Login with the PIN when the token says CKF_LOGIN_REQUIRED)");

        if (reload) {
            reloadChecks(p, ks, work);
        } else {
            createChecks(p, ks, work);
        }
        System.out.println(failures == 0 ? "java: all checks passed"
                                         : "java: " + failures + " check(s) FAILED");
        System.exit(failures == 0 ? 0 : 1);
    }

    static void createChecks(Provider p, KeyStore ks, Path work) throws Exception {
        System.out.println("-- KeyGenerator AES-256 on the token");
        KeyGenerator kg = KeyGenerator.getInstance("AES", p);
        kg.init(256);
        SecretKey k = kg.generateKey();
        System.out.println("   key: " + k);
        check(k.getAlgorithm().equals("AES") && k.toString().contains("256 bits"),
              "generated an AES-256 key in the module");
        check(k.toString().contains("token object"),
              "attributes(generate, CKO_SECRET_KEY, CKK_AES) made it a token object");
        check(k.toString().contains("sensitive") && k.getEncoded() == null,
              "its value is sensitive (getEncoded() is null)");

        System.out.println("-- AES/GCM/NoPadding");
        byte[] data = rnd(10000), iv = rnd(12), aad = "header".getBytes();
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
            c.init(Cipher.ENCRYPT_MODE, k, new GCMParameterSpec(128, iv));
            c.updateAAD(aad);
            byte[] ct = c.doFinal(data);
            check(ct.length == data.length + 16, "ciphertext is data + 16-byte tag");
            c.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, iv));
            c.updateAAD(aad);
            check(Arrays.equals(c.doFinal(ct), data), "AES-GCM round trip (10000 bytes)");
            ct[5] ^= 1;
            c.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, iv));
            c.updateAAD(aad);
            try {
                c.doFinal(ct);
                fail("a tampered AES-GCM ciphertext decrypted", null);
            } catch (javax.crypto.AEADBadTagException e) {
                ok("tampered ciphertext -> AEADBadTagException");
            }
        } catch (GeneralSecurityException | RuntimeException e) {
            fail("AES/GCM/NoPadding with the token key", e);
        }

        System.out.println("-- AES/CBC/PKCS5Padding");
        try {
            Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
            byte[] civ = rnd(16);
            c.init(Cipher.ENCRYPT_MODE, k, new IvParameterSpec(civ));
            byte[] ct = c.doFinal(data);
            check(ct.length == 10016, "CBC-PAD ciphertext is 10016 bytes");
            c.init(Cipher.DECRYPT_MODE, k, new IvParameterSpec(civ));
            check(Arrays.equals(c.doFinal(ct), data), "AES-CBC-PAD round trip");
            c.init(Cipher.ENCRYPT_MODE, k, new IvParameterSpec(civ));
            check(Arrays.equals(parts(c, data), ct), "multi-part (update in 1000-byte parts) == one-shot");
            Files.write(work.resolve("java-cbc.iv"), civ);
            Files.write(work.resolve("java-cbc.ct"), ct);
            Files.write(work.resolve("java-cbc.pt"), data);
        } catch (GeneralSecurityException | RuntimeException e) {
            fail("AES/CBC/PKCS5Padding with the token key", e);
        }

        System.out.println("-- the same bytes as SunJCE, with a known key imported into the module");
        byte[] kv = rnd(32);
        SecretKey known = new SecretKeySpec(kv, "AES");
        SecretKey imported = null;
        try {
            imported = (SecretKey) SecretKeyFactory.getInstance("AES", p).translateKey(known);
        } catch (GeneralSecurityException e) {
            fail("importing a known AES key (SecretKeyFactory.translateKey -> C_CreateObject)", e);
            return;
        }
        try {
            byte[] giv = rnd(12);
            Cipher a = Cipher.getInstance("AES/GCM/NoPadding", p);
            Cipher b = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
            a.init(Cipher.ENCRYPT_MODE, imported, new GCMParameterSpec(128, giv));
            b.init(Cipher.ENCRYPT_MODE, known, new GCMParameterSpec(128, giv));
            a.updateAAD(aad);
            b.updateAAD(aad);
            check(Arrays.equals(a.doFinal(data), b.doFinal(data)), "AES-GCM identical to SunJCE");
            a.init(Cipher.ENCRYPT_MODE, imported, new GCMParameterSpec(128, rnd(12)));
            byte[] g2iv = a.getIV();
            a.updateAAD(aad);
            byte[] multi = parts(a, data);
            b.init(Cipher.ENCRYPT_MODE, known, new GCMParameterSpec(128, g2iv));
            b.updateAAD(aad);
            check(Arrays.equals(multi, b.doFinal(data)), "AES-GCM multi-part identical to SunJCE");
        } catch (GeneralSecurityException | RuntimeException e) {
            fail("AES-GCM comparison with SunJCE (imported key)", e);
        }
        try {
            byte[] civ = rnd(16);
            Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
            Cipher d = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
            c.init(Cipher.ENCRYPT_MODE, imported, new IvParameterSpec(civ));
            d.init(Cipher.ENCRYPT_MODE, known, new IvParameterSpec(civ));
            check(Arrays.equals(c.doFinal(data), d.doFinal(data)), "AES-CBC-PAD identical to SunJCE");
        } catch (GeneralSecurityException | RuntimeException e) {
            fail("AES-CBC-PAD comparison with SunJCE (imported key)", e);
        }

        System.out.println("-- AES key wrap transformations (which does SunPKCS11 map?)");
        SecretKey kek = null;
        byte[] kekv = rnd(32);
        try {
            kek = (SecretKey) SecretKeyFactory.getInstance("AES", p)
                      .translateKey(new SecretKeySpec(kekv, "AES"));
        } catch (GeneralSecurityException e) {
            fail("importing a KEK", e);
        }
        for (String t : new String[] {"AESWrap", "AES/KW/NoPadding", "AES/KWP/NoPadding",
                                      "AES/KW/PKCS5Padding"}) {
            Cipher w;
            try {
                w = Cipher.getInstance(t, p);
            } catch (NoSuchAlgorithmException e) {
                System.out.println("   MAP: " + t + " -> not mapped by SunPKCS11 (" + e.getMessage() + ")");
                continue;
            }
            System.out.println("   MAP: " + t + " -> mapped");
            try {
                w.init(Cipher.WRAP_MODE, kek);
                byte[] wrapped = w.wrap(imported);
                Cipher ref = Cipher.getInstance(t, "SunJCE");
                ref.init(Cipher.WRAP_MODE, new SecretKeySpec(kekv, "AES"));
                check(Arrays.equals(wrapped, ref.wrap(known)), t + ": wrap identical to SunJCE");
                w.init(Cipher.UNWRAP_MODE, kek);
                Key u = w.unwrap(wrapped, "AES", Cipher.SECRET_KEY);
                Cipher e1 = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
                e1.init(Cipher.ENCRYPT_MODE, u, new IvParameterSpec(new byte[16]));
                Cipher e2 = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
                e2.init(Cipher.ENCRYPT_MODE, known, new IvParameterSpec(new byte[16]));
                check(Arrays.equals(e1.doFinal(data), e2.doFinal(data)),
                      t + ": unwrapped key encrypts like the original");
            } catch (GeneralSecurityException | RuntimeException e) {
                fail(t + " wrap/unwrap", e);
            }
        }

        System.out.println("-- HMAC (Mac HmacSHA256 / HmacSHA512), when SunPKCS11 offers it for the module");
        for (String alg : new String[] {"HmacSHA256", "HmacSHA512"}) {
            Mac m;
            try {
                m = Mac.getInstance(alg, p);
            } catch (NoSuchAlgorithmException e) {
                System.out.println("   SKIP: " + alg + ": not offered (the module lists no such HMAC "
                                   + "mechanism; C_Sign is not implemented in this build)");
                continue;
            }
            try {
                byte[] hk = rnd(32);
                m.init(new SecretKeySpec(hk, alg));
                byte[] mac = m.doFinal(data);
                Mac ref = Mac.getInstance(alg, "SunJCE");
                ref.init(new SecretKeySpec(hk, alg));
                check(Arrays.equals(mac, ref.doFinal(data)), alg + " (C_Sign) identical to SunJCE");
                m.init(new SecretKeySpec(hk, alg));
                for (int i = 0; i < data.length; i += 1000)
                    m.update(data, i, Math.min(1000, data.length - i));
                check(Arrays.equals(m.doFinal(), mac), alg + " multi-part identical");
            } catch (GeneralSecurityException | RuntimeException e) {
                fail(alg, e);
            }
        }

        System.out.println("-- store the token key under an alias (KeyStore.setEntry -> C_CopyObject/C_SetAttributeValue)");
        try {
            ks.setEntry(ALIAS, new KeyStore.SecretKeyEntry(k), null);
            check(ks.containsAlias(ALIAS) && ks.isKeyEntry(ALIAS), "alias " + ALIAS + " present");
        } catch (GeneralSecurityException | RuntimeException e) {
            fail("KeyStore.setEntry of the token key", e);
        }
    }

    static void reloadChecks(Provider p, KeyStore ks, Path work) throws Exception {
        System.out.println("-- a new JVM finds the token key by alias (CKA_LABEL) and decrypts");
        System.out.println("   aliases: " + Collections.list(ks.aliases()));
        Key k = ks.getKey(ALIAS, null);
        if (k == null) {
            fail("alias " + ALIAS + " not found in a new JVM", null);
            return;
        }
        ok("found " + ALIAS + ": " + k);
        Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
        c.init(Cipher.DECRYPT_MODE, k, new IvParameterSpec(Files.readAllBytes(work.resolve("java-cbc.iv"))));
        check(Arrays.equals(c.doFinal(Files.readAllBytes(work.resolve("java-cbc.ct"))),
                            Files.readAllBytes(work.resolve("java-cbc.pt"))),
              "the first JVM's ciphertext decrypts with the stored key");
        ks.deleteEntry(ALIAS);
        check(!ks.containsAlias(ALIAS), "KeyStore.deleteEntry removed the token key");
    }
}
